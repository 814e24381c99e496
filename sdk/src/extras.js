// The optional features: the helpers, and the automatic capture of clicks (data-track,
// outbound and affiliate links), scroll depth, forms, attention (heartbeat, idle), errors,
// web vitals and slow pages. Bundled into the npm build; the <script> build loads this as a
// second file right after the core, and it runs before the page's load event. Nothing is
// lost meanwhile: the core keeps early clicks, errors and helper calls for it, and
// performance entries are buffered by the browser.
import { LEAVE } from './phases.js'

const round = Math.round
const cut = (s, n) => String(s || '').slice(0, n || 1024)
const MILESTONES = [25, 50, 75, 90, 100]
// data-* values that the server's typed properties expect as numbers
const NUMERIC = /^(price|productPrice|revenue|value|amount|quantity|resultsCount)$/

/** data-<prefix>-foo-bar="x" -> {fooBar: "x"}; numeric names become numbers. */
function dataProps(el, prefix) {
  const out = {}
  for (let key in el.dataset) {
    const value = el.dataset[key]
    if (!key.indexOf(prefix) && key != prefix) {
      key = key.slice(prefix.length)
      key = key[0].toLowerCase() + key.slice(1)
      out[key] = NUMERIC.test(key) && value && !isNaN(value) ? +value : value
    }
  }
  return out
}

// The helpers: track<Name>(...parameters, extraProperties) sends the event <name> (snake_case).
// A "product" parameter is an id or {id, name, slug, price, ...} (sent as productId,
// productName, productSlug, productPrice, ...); a "link" is {id, platform, price} (sent as
// linkId, platform, price).
const HELPERS = {
  ProductView: 'product source',
  AffiliateClick: 'product link position ctaText',
  SearchQuery: 'query resultsCount',
  SearchFilter: 'filter value',
  SearchSort: 'sort',
  ZeroResults: 'query',
  ProductHover: 'product',
  ProductCompare: 'productIds',
  ProductWishlist: 'product action',
  CopiedCoupon: 'couponCode product',
  SharedProduct: 'product channel',
}

/** trackSearchQuery("tv", 3, {page: 2}) -> ["search_query", {query: "tv", resultsCount: 3, page: 2}] */
export function helperEvent(name, values) {
  const names = HELPERS[name].split(' ')
  const props = {}
  names.forEach((param, i) => {
    const v = values[i]
    if (param == 'product') {
      if (typeof v == 'object') for (const k in v) props[/^(id|name|slug|price)$/.test(k) ? 'product' + k[0].toUpperCase() + k.slice(1) : k] = v[k]
      else props.productId = v
      props.productId = cut(props.productId, 128)
    } else if (param == 'link') v && Object.assign(props, v, { linkId: v.id, id: void 0 })
    else props[param] = v
  })
  return [name.replace(/\B[A-Z]/g, '_$&').toLowerCase(), Object.assign(props, values[names.length])]
}

/** Installs the features on one started tracker; returns its page-left / page-hidden hook. */
export function installExtras(api) {
  const { on, config, safe, cleanup, beacon } = api
  // Affiliate and outbound links take the visitor away: their clicks are sent at once.
  const emit = (type, props) => {
    api.emit(type, props)
    ;(type == 'affiliate_click' || props.outbound) && beacon()
  }
  const affiliateSelector = config.affiliateSelector || '[data-affiliate],[rel~=sponsored]'
  const heartbeatInterval = config.heartbeatInterval ?? 30000
  const idleTimeout = config.idleTimeout ?? 60000
  const slowPageThreshold = config.slowPageThreshold ?? 3000
  const maxErrors = config.maxErrors ?? 10
  // form -> name of the field last touched, for forms started and not submitted
  const forms = new Map()
  const errors = new Set()
  // scroll: deepest % on this page, index of the next milestone
  let deepest = 0
  let next = 0
  // CLS: the largest burst of layout shifts less than 1 s apart within 5 s
  let burst = 0
  let burstStart = 0
  let lastShift = 0
  let lastActive, lastBeat, idleSince, tickTimer, vitals

  api.help = (name, values) => emit(...helperEvent(name, values))

  if (config.autoTrack) {
    // --- clicks: [data-track] elements, outbound links, affiliate links ---------------------
    on(document, 'click', click, 1)
    on(document, 'auxclick', click, 1)
    on(window, 'error', fail)
    on(window, 'unhandledrejection', fail)

    // --- scroll depth: each milestone once per page, even when one scroll passes several -----
    on(window, 'scroll', () => {
      const el = document.documentElement
      const height = el.scrollHeight - innerHeight
      const depth = Math.min(100, round((scrollY / height) * 100))
      if (height > 0) {
        deepest = Math.max(deepest, depth)
        while (depth >= MILESTONES[next])
          emit('scroll_depth', { depth: MILESTONES[next++], maxDepth: deepest, pixelDepth: round(scrollY), contentHeight: el.scrollHeight })
      }
    })

    // --- forms: start, submit, abandon (names and ids only, never values) -------------------
    on(document, 'input', (e) => {
      const form = e.target.form
      if (form) {
        forms.has(form) || emit('form_start', formProps(form))
        forms.set(form, cut(e.target.name || e.target.id, 128))
      }
    }, 1)
    on(document, 'submit', (e) => {
      forms.delete(e.target)
      emit('form_submit', formProps(e.target))
    }, 1)

    // --- attention: heartbeat and idle, only while the page is visible ----------------------
    for (const type of ['pointerdown', 'pointermove', 'keydown', 'scroll', 'touchstart']) on(window, type, active, 1)
    on(document, 'visibilitychange', visibility)
    cleanup(() => clearInterval(tickTimer))
    visibility()

    // --- web vitals (LCP, CLS, INP, FCP, TTFB) and slow pages -------------------------------
    vitals = { ttfb: round(navigation().responseStart) || 0 }
    observe('paint', (e) => e.name == 'first-contentful-paint' && (vitals.fcp = round(e.startTime)))
    observe('largest-contentful-paint', (e) => (vitals.lcp = round(e.startTime)))
    observe('layout-shift', (e) => {
      if (!e.hadRecentInput) {
        if (e.startTime - lastShift > 1000 || e.startTime - burstStart > 5000) burst = 0
        if (!burst) burstStart = e.startTime
        lastShift = e.startTime
        burst += e.value
        vitals.cls = Math.max(vitals.cls || 0, round(burst * 1e4) / 1e4)
      }
    })
    // INP: the slowest interaction (which is INP for pages with fewer than 50 interactions)
    observe('event', (e) => e.interactionId && (vitals.inp = Math.max(vitals.inp || 0, e.duration)), { durationThreshold: 40 })
    document.readyState == 'complete' ? slow() : on(window, 'load', slow)
  }

  function click(e) {
    if (e.type == 'click' || e.button == 1) {
      const target = e.target.closest ? e.target : e.target.parentElement
      const tracked = target.closest('[data-track]')
      const link = target.closest('a[href]')
      tracked && emit(tracked.dataset.track || 'click', dataProps(tracked, 'track'))
      if (link && link != tracked) {
        const text = cut(link.innerText.trim(), 200)
        if (link.matches(affiliateSelector)) {
          const props = dataProps(link, '')
          props.productId = cut(props.productId || props.affiliate || link.hostname, 128)
          delete props.affiliate
          emit('affiliate_click', { ...props, ctaText: text, url: cut(link.href) })
        } else if (link.host != location.host && /^http/.test(link.protocol))
          emit('click', { outbound: true, url: cut(link.href), text })
      }
    }
  }

  function formProps(form) {
    return { formId: form.id || form.getAttribute('name') || form.getAttribute('action') || '' }
  }

  function active() {
    lastActive = Date.now()
    idleSince && emit('idle_end', { idleTime: lastActive - idleSince })
    idleSince = 0
  }

  function visibility() {
    clearInterval(tickTimer)
    if (document.visibilityState == 'visible') {
      lastActive = lastBeat = Date.now()
      tickTimer = setInterval(
        safe(() => {
          const now = Date.now()
          if (!idleSince && now - lastActive >= idleTimeout) {
            idleSince = lastActive
            emit('idle_start', {})
          }
          if (!idleSince && heartbeatInterval && now - lastBeat >= heartbeatInterval) {
            lastBeat = now
            emit('heartbeat', {})
          }
        }),
        1000
      )
    }
  }

  /** js_error: deduplicated, at most maxErrors per page load. */
  function fail(e) {
    const r = e.reason || e.error || {}
    const props = e.reason
      ? { message: cut(r.message || e.reason), stack: cut(r.stack), kind: 'unhandledrejection' }
      : { message: cut(e.message), source: cut(e.filename), line: e.lineno, column: e.colno, stack: cut(r.stack) }
    const key = props.message + props.source + props.line
    if (props.message && errors.size < maxErrors && !errors.has(key)) {
      errors.add(key)
      emit('js_error', props)
    }
  }

  function navigation() {
    return performance.getEntriesByType('navigation')[0] || {}
  }

  function observe(type, fn, extra) {
    try {
      const observer = new PerformanceObserver((list) => list.getEntries().forEach(safe(fn)))
      observer.observe({ type, buffered: true, ...extra })
      cleanup(() => observer.disconnect())
    } catch (e) {}
  }

  function slow() {
    setTimeout(
      safe(() => {
        const loadTime = round(navigation().loadEventEnd)
        loadTime > slowPageThreshold && emit('slow_page', { loadTime, ttfb: vitals.ttfb, threshold: slowPageThreshold })
      })
    )
  }

  // what happened before this arrived: helper calls ([name, arguments]), clicks, errors
  api.early.splice(0).forEach(safe((e) => (e[0] ? api.help(...e) : /click/.test(e.type) ? click(e) : fail(e))))

  return (phase) => {
    if (phase == LEAVE) {
      forms.forEach((field, form) => emit('form_abandon', { ...formProps(form), lastField: field }))
      forms.clear()
      const exit = { maxDepth: deepest }
      deepest = next = 0
      return exit
    }
    active()
    // once per page load, when it is first hidden: the values are final by then
    vitals && emit('web_vitals', vitals)
    vitals = 0
  }
}
