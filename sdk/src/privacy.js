// Consent: what the visitor allowed, kept on the device only once analytics consent is given.
import { store } from './storage.js'

/**
 * The seed's PrivacyManager. `analytics` is null until the visitor decides: the tracker then
 * runs cookieless or waits, depending on its `consent` option. setConsent() dispatches a
 * `consent-updated` window event whose detail is the new state.
 */
export function PrivacyManager() {
  let state = { necessary: true, analytics: null, marketing: false, ...store('c') }
  const manager = {
    getConsent: () => ({ ...state }),
    hasConsent: (kind) => !!state[kind],
    setConsent(consent, quiet) {
      state = { ...state, ...consent, necessary: true }
      // Remembering a choice is itself storage: only an analytics "yes" is written down, and
      // anything else removes all we stored.
      if (state.analytics) store('c', state)
      else for (const key of 'vsqcx') store(key, null)
      quiet || dispatchEvent(new CustomEvent('consent-updated', { detail: (manager.last = manager.getConsent()) }))
    },
  }
  return manager
}
