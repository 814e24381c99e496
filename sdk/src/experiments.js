// Experiments (A/B tests): tracker.getVariant(key) for the site's running experiments.
//
// The definitions come from GET <base>api/v1/experiments/config?siteKey=... once per page.
// A visitor with analytics consent is assigned from their own visitor id; without it the
// tracker knows no id, so it uses the assignment the server computed for the cookieless
// identity its events are counted under. Assignment (the same in sightline/experiments.py):
//   h = fmix32(fnv1a32(utf8(key + ":" + visitorId))), point = floor(h / 2^32 * totalWeight),
//   variant = the first whose cumulative weight exceeds point.
// The first getVariant(key) on a page that the experiment targets sends experiment_exposure
// (once per visitor when consent allows remembering it), and from then on every event
// carries the visitor's variants in properties.$experiments.
import { store } from './storage.js'

/** FNV-1a over the UTF-8 bytes, then MurmurHash3's 32-bit finaliser; an unsigned 32-bit int. */
export function assignmentHash(key, visitorId) {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(key + ':' + visitorId)) h = Math.imul(h ^ byte, 0x01000193)
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** The index of the variant a visitor sees, for variants with these integer weights. */
export function assignVariant(key, visitorId, weights) {
  const total = weights.reduce((a, b) => a + b, 0)
  let point = Math.floor((assignmentHash(key, visitorId) / 4294967296) * total)
  for (let i = 0; i < weights.length; i++) if ((point -= weights[i]) < 0) return i
  return weights.length - 1
}

/** "/products/*" -> matches "/products/kettle"; "*" matches any characters. */
const matches = (pattern, path) =>
  new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(path)

/**
 * Gives a tracker getVariant(key), getVariants() and experimentsReady (a promise that
 * resolves once the definitions are loaded, or after `experimentsTimeout` ms without them).
 */
export function installExperiments(tracker) {
  if (!tracker || tracker.getVariant) return tracker
  const config = tracker.config
  const url =
    config.experimentsEndpoint || config.endpoint.replace(/analytics\/collect$/, 'experiments/config')
  // key -> variant the visitor was exposed to on this page (and before, with consent)
  const active = {}
  let loaded
  const log = (e) => config.debug && console.debug('[sightline]', e)
  const consented = () => tracker.privacy.getConsent().analytics && store('v')

  const fetched = fetch(url + (url.includes('?') ? '&' : '?') + 'siteKey=' + encodeURIComponent(config.siteKey || config.apiKey || ''), {
    credentials: 'omit',
  })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((body) => (loaded = body))
    .catch(log)

  function variant(key) {
    const experiment = loaded && loaded.experiments.find((e) => e.key == key)
    if (!experiment || (experiment.pages[0] && !experiment.pages.some((p) => matches(p, location.pathname)))) return null
    const id = consented()
    if (!id) return loaded.assignments[key] || null
    return experiment.variants[assignVariant(key, id, experiment.variants.map((v) => v.weight))].key
  }

  function getVariant(key) {
    try {
      const chosen = variant(key)
      if (chosen && active[key] != chosen) {
        active[key] = chosen
        config.props = { ...config.props, $experiments: { ...active } }
        const seen = (consented() && store('x')) || []
        const mark = key + ':' + chosen
        if (!seen.includes(mark)) {
          tracker.track('experiment_exposure', { experiment: key, variant: chosen })
          consented() && store('x', seen.concat(mark).slice(-100))
        }
      }
      return chosen
    } catch (e) {
      log(e)
      return null
    }
  }

  tracker.getVariant = getVariant
  tracker.getVariants = () => ({ ...active })
  tracker.experimentsReady = Promise.race([
    fetched,
    new Promise((resolve) => setTimeout(resolve, config.experimentsTimeout ?? 1000)),
  ]).then(() => !!loaded)
  return tracker
}
