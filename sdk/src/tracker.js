// The tracker core: consent, identity, sessions, page views (also of single-page apps) and
// delivery. The automatic capture of clicks, scrolling, forms, attention, errors and web
// vitals, and the helpers, are the optional features (extras.js): bundled into the npm
// build, loaded by the <script> build as a second file right after this one.
//
// Every entry point is wrapped so that nothing here can throw into the host page. Written
// for size: state lives in closure variables, which minify away.
import { HIDE, LEAVE } from './phases.js'
import { PrivacyManager } from './privacy.js'
import { store } from './storage.js'

const VERSION = __VERSION__
const SESSION_MS = 30 * 60000
// The address of the classic <script> while it runs: the default endpoint and the chunk
// are found from it.
const SCRIPT = typeof document < 'u' && document.currentScript && document.currentScript.src

// (endpoint and siteKey are worked out in AnalyticsTracker; debug is off unless set)
const DEFAULTS = {
  batchSize: 10,
  flushInterval: 5000,
  sampleRate: 1,
  respectDnt: true,
  consent: 'cookieless',
  autoTrack: true,
  maxQueue: 500,
}

// The helpers track<Name>(...) come with the optional features; calls made before those
// arrive wait for them.
export const HELPERS =
  'ProductView AffiliateClick SearchQuery SearchFilter SearchSort ZeroResults ProductHover ProductCompare ProductWishlist CopiedCoupon SharedProduct'

let installer
let requested
const waiting = []

/** Called with the optional features' installer by their module or chunk. */
export function provideExtras(install) {
  installer = install
  waiting.splice(0).forEach((fn) => fn())
}

/** Swallows (and in debug mode logs) anything a tracker function throws. */
const guard = (fn, log) =>
  function () {
    try {
      return fn.apply(this, arguments)
    } catch (e) {
      log(e)
    }
  }

/** crypto.randomUUID needs a secure context. A blob URL ends with a random UUID made the
 * same way (File API: "generate a random UUID"), in any context. */
export const uuid = (url) =>
  crypto.randomUUID?.() ?? (URL.revokeObjectURL((url = URL.createObjectURL(new Blob()))), url.slice(-36))

const cut = (s, n) => String(s ?? '').slice(0, n)

export function AnalyticsTracker(options) {
  const config = { ...DEFAULTS }
  for (const k in options) if (options[k] != null) config[k] = options[k]
  config.siteKey = config.siteKey || config.apiKey
  // The script at <base>sdk/v1/sightline.js posts to <base>api/v1/analytics/collect, so a
  // first-party path prefix (a reverse proxy) carries over.
  config.endpoint = config.endpoint || new URL((SCRIPT ? '../../' : '/') + 'api/v1/analytics/collect', SCRIPT || location).href

  const log = (...args) => config.debug && console.debug('[sightline]', ...args)
  const privacy = PrivacyManager()
  // every listener goes away with stop(): aborting `signal` removes the event listeners
  const on = (target, type, fn, capture) => target.addEventListener(type, guard(fn, log), { capture, passive: true, signal })
  let initialized, started, sampled, canStore, signal
  // event ids: this page load's random id and a count, "<uuid>.<n>" (unique, and compact
  // in the archive, where the page's part repeats)
  const pageId = uuid() + '.'
  let seq = 0
  let visitorId = ''
  let userId = ''
  // what stop() undoes
  let listeners = []
  let queue = []
  // delivery: a request in flight, its promise, the timer, earliest retry, backoff in ms
  let busy, pending, timer
  let retryAt = 0
  let backoff = 0
  // session: {id, s: start ms, t: last activity ms}; shared by the tabs through storage
  let session = {}
  // page: the page being viewed {u: url, p: path, n: title, r: referrer, t: shown at};
  // leaving: the page whose exit events are being made
  let page = {}
  let leaving, lastUrl
  // the optional features: their hook (told LEAVE and HIDE), what they are given, and what
  // happened before they arrived (errors, clicks, helper calls as [name, arguments])
  let extra, api, early

  // --- consent and identity -----------------------------------------------------------------
  const decision = () => privacy.getConsent().analytics
  const allowed = () =>
    sampled &&
    !(config.respectDnt && (navigator.doNotTrack == '1' || navigator.globalPrivacyControl)) &&
    (decision() || (decision() == null && config.consent != 'required'))

  function loadIds() {
    canStore = !!decision()
    visitorId = canStore ? store('v') || uuid() : ''
    if (canStore) {
      store('v', visitorId)
      // consent given mid-visit: the visit so far becomes a stored session (unless a tab has one)
      store('s') || !session.t || store('s', { ...session, id: uuid() })
    }
  }

  // --- events -------------------------------------------------------------------------------
  // UTM parameters travel in pageUrl; the server reads them from there. Device type, OS
  // and browser come from the server's parsing of the User-Agent header.
  function make(type, properties, s, timestamp) {
    const at = leaving || { u: location.href, p: location.pathname, n: document.title, r: page.r }
    // config.props: properties every event carries (the experiments' $experiments)
    properties = { ...config.props, ...properties }
    // the server drops what browser automation sends (see the bot filter)
    if (navigator.webdriver) properties = { ...properties, $webdriver: true }
    return {
      eventId: pageId + ++seq,
      eventType: type,
      timestamp,
      sessionId: s.id || '',
      visitorId,
      userId,
      pageUrl: cut(at.u, 2048),
      pagePath: cut(at.p, 2048),
      pageTitle: cut(at.n, 512),
      referrer: cut(at.r, 2048),
      screenResolution: screen.width + 'x' + screen.height,
      viewport: innerWidth + 'x' + innerHeight,
      properties,
    }
  }

  /** Queues one event, starting a new session first after 30 minutes of inactivity. */
  function emit(type, properties) {
    if (started) {
      const now = Date.now()
      let s = (canStore && store('s')) || session
      if (!(now - s.t < SESSION_MS)) {
        s.t && push(make('session_end', { duration: Math.round((s.t - s.s) / 1000) }, s, s.t))
        push(make('session_start', {}, (s = { id: canStore ? uuid() : '', s: now }), now))
      }
      s.t = now
      session = s
      canStore && store('s', s)
      // one clock reading: a session ends exactly at its last event's time
      push(make(type, properties, s, now))
    }
  }

  function push(event) {
    queue = queue.concat(event).slice(-config.maxQueue)
    // Offline, events go straight to the device (with consent): a page closing or killed
    // before it is back online loses none.
    navigator.onLine || persist()
    if (config.debug) {
      log(event.eventType, event)
      dispatchEvent(new CustomEvent('sightline:event', { detail: event }))
    }
    schedule()
  }

  // --- delivery -----------------------------------------------------------------------------
  // A string body is sent as text/plain: a "simple" request, so no CORS preflight.
  const body = (events) =>
    JSON.stringify({ siteKey: config.siteKey, events, metadata: { sentAt: Date.now(), sdkVersion: VERSION } })

  const post = (data, keepalive) => fetch(config.endpoint, { method: 'POST', body: data, keepalive, credentials: 'omit' })

  function schedule() {
    if (queue.length >= config.batchSize) send()
    else if (queue[0] && !timer) timer = setTimeout(send, config.flushInterval)
  }

  /** One request at a time; a failed batch goes back to the front of the queue and backs off.
   * A timer that fires with nothing to do does nothing, so timers are never cleared. */
  function send(force) {
    timer = 0
    if (busy || !queue[0] || (!force && Date.now() < retryAt)) return pending
    // at most 50 events (about 25 kB): small enough for keepalive, which lets a request
    // outlive its page, within the browser's 64 kB for those
    const batch = queue.splice(0, 50)
    const data = body(batch)
    busy = batch
    return (pending = post(data, data.length < 3e4)
      .then(({ status }) => {
        // Other 4xx answers will never succeed: drop the batch rather than retry forever.
        if (status > 499 || status == 429 || status == 408) throw status
        backoff = retryAt = 0
      })
      .catch((e) => {
        // (unless a page going away offline already kept it on the device)
        if (busy) queue = batch.concat(queue).slice(-config.maxQueue)
        backoff = Math.min(6e4, backoff * 2 || 1000)
        retryAt = Date.now() + backoff
        timer = setTimeout(send, backoff)
        log(e)
      })
      .finally(() => {
        busy = 0
        schedule()
      }))
  }

  /** The page may be going away: hand everything to the browser (sendBeacon survives unload). */
  function beacon() {
    // offline, the batch in flight will fail: keep it with the rest (ids make a resend harmless)
    if (busy && !navigator.onLine) (queue = busy.concat(queue)), (busy = 0)
    while (queue[0] && navigator.onLine) {
      const batch = queue.splice(0, 20)
      const data = body(batch)
      // (every browser that runs this ES2020 code has sendBeacon)
      navigator.sendBeacon(config.endpoint, data) ||
        post(data, true).catch(() => {
          queue = batch.concat(queue)
          persist()
        })
    }
    persist()
  }

  /** Unsent events stay on the device (bounded) only with analytics consent. */
  function persist() {
    if (canStore && queue[0]) {
      store('q', (store('q') || []).concat(queue).slice(-config.maxQueue))
      queue = []
    }
  }

  /** Takes back what this or another page of the site kept for later. */
  function restore() {
    if (canStore) {
      queue = (store('q') || []).concat(queue)
      store('q', null)
    }
    schedule()
  }

  // --- pages --------------------------------------------------------------------------------
  function leave() {
    if (page.u) {
      leaving = page
      emit('page_exit', { timeOnPage: Date.now() - page.t, ...(extra && extra(LEAVE)) })
      page = {}
      leaving = 0
    }
  }

  function pageView(properties) {
    if (started) {
      leave()
      // a single-page-app navigation's referrer is the previous page
      page = { r: lastUrl || document.referrer }
      emit('page_view', properties)
      page = { ...page, u: (lastUrl = location.href), p: location.pathname, n: document.title, t: Date.now() }
    }
  }

  // Runs after the router's own code, which sets the new title.
  const navigated = () => setTimeout(guard(() => location.href != page.u && pageView(), log))

  function hide() {
    extra && extra(HIDE)
    beacon()
  }

  // --- lifecycle ----------------------------------------------------------------------------
  function start() {
    started = 1
    early = []
    listeners = [() => controller.abort()]
    const controller = new AbortController()
    signal = controller.signal
    loadIds()
    const now = Date.now()
    // Cookieless: a reload, or a visit from one of our own pages, continues its session.
    if (!canStore && ((performance.navigation || {}).type || !document.referrer.indexOf(location.origin + '/')))
      session = { s: now, t: now }
    for (const name of ['pushState', 'replaceState']) {
      const original = history[name]
      original.sightline ||
        ((history[name] = function () {
          const result = original.apply(this, arguments)
          dispatchEvent(new Event('sightline:navigate'))
          return result
        }).sightline = 1)
    }
    // Back online: send what waits, here or on the device; but not from a page that is
    // going away (page left, none shown since), whose request could die with it.
    on(window, 'online', () => page.u && (restore(), send(1)))
    on(window, 'pagehide', () => {
      leave()
      hide()
    })
    on(window, 'pageshow', (e) => e.persisted && pageView())
    if (config.autoTrack) {
      on(window, 'sightline:navigate', navigated)
      on(window, 'popstate', navigated)
      on(window, 'hashchange', navigated)
      on(document, 'visibilitychange', () => document.visibilityState == 'hidden' && hide())
      // (bounded: the chunk may be blocked)
      for (const type of ['error', 'unhandledrejection', 'click', 'auxclick'])
        on(window, type, (e) => extra || (early.length < 99 && early.push(e)), 1)
      pageView()
    }
    // The optional features: at once when bundled, else once their chunk has run.
    const mine = (api = { emit, on, config, early, beacon, safe: (fn) => guard(fn, log), cleanup: (fn) => listeners.push(fn) })
    const install = () => api == mine && (extra = installer(mine))
    installer ? install() : waiting.push(install)
    if (__LAZY__ && !requested && SCRIPT) {
      const script = document.createElement('script')
      script.src = new URL('sightline-extras.js?v=' + VERSION, SCRIPT)
      document.head.appendChild(script)
      requested = 1
    }
    restore()
  }

  function stop() {
    listeners.forEach((off) => off())
    clearTimeout(timer)
    timer = started = extra = api = 0
    page = {}
  }

  function onConsent(e) {
    e.detail && e.detail != privacy.last && privacy.setConsent(e.detail, 1)
    // Refused: stop, and forget what was not sent yet.
    if (!allowed()) stop((queue = []))
    else started ? loadIds() : start()
  }

  const tracker = {
    config,
    privacy,
    init() {
      if (!initialized) {
        initialized = 1
        sampled = Math.random() < config.sampleRate
        addEventListener('consent-updated', (onConsent = guard(onConsent, log)))
        allowed() && start()
        log('init', started)
      }
    },
    track: emit,
    trackPageView: pageView,
    identify: (id) => (userId = cut(id, 128)),
    setConsent: (consent) => privacy.setConsent(consent),
    async flush() {
      while (queue[0] || busy) if ((await (busy ? pending : send(1)), backoff)) break
    },
    destroy() {
      emit('session_end', { duration: Math.round((Date.now() - session.s) / 1000) })
      beacon()
      stop()
      removeEventListener('consent-updated', onConsent)
      initialized = 0
    },
  }
  for (const name of HELPERS.split(' '))
    tracker['track' + name] = (...args) => (extra ? api.help(name, args) : early.push([name, args]))
  for (const k in tracker) if (tracker[k].call) tracker[k] = guard(tracker[k], log) // (the functions)
  return tracker
}
