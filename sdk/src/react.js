// React bindings: <AnalyticsProvider config={...}> and useAnalytics().
import { createContext, createElement, useContext, useMemo, useState } from 'react'
import { getTracker, initAnalytics } from './index.js'

const AnalyticsContext = createContext(null)

const METHODS = [
  'track',
  'trackPageView',
  'trackProductView',
  'trackAffiliateClick',
  'trackSearchQuery',
  'trackSearchFilter',
  'trackSearchSort',
  'trackZeroResults',
  'trackProductHover',
  'trackProductCompare',
  'trackProductWishlist',
  'trackCopiedCoupon',
  'trackSharedProduct',
  'identify',
  'setConsent',
  'flush',
]

/**
 * Starts the page's tracker (once; it is a singleton shared with initAnalytics) and hands
 * it to useAnalytics() below. Pass `tracker` to use one you created yourself. Rendering on
 * the server creates nothing. Unmounting does not stop the tracker: call destroy() for that.
 */
export function AnalyticsProvider({ config, tracker, children }) {
  const [value] = useState(
    () => tracker || getTracker() || (typeof window == 'undefined' ? null : initAnalytics(config || {}))
  )
  return createElement(AnalyticsContext.Provider, { value }, children)
}

/**
 * The tracker's methods, bound and stable across renders; each is a no-op while there is
 * no tracker (server rendering, tracking not allowed). `trackEvent` is the seed's name for `track`.
 */
export function useAnalytics() {
  const tracker = useContext(AnalyticsContext)
  return useMemo(() => {
    const api = { tracker }
    for (const name of METHODS)
      api[name] = (...args) => {
        try {
          const t = tracker || getTracker()
          return t ? t[name](...args) : undefined
        } catch (e) {}
      }
    api.trackEvent = api.track
    return api
  }, [tracker])
}
