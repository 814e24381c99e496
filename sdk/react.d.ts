// Type declarations of the React bindings (`@sightline/tracker/react`, or
// window.SightlineReact from /sdk/v1/sightline-react.js).
import type { ReactElement, ReactNode } from 'react'
import type { Tracker, TrackerConfig } from './sightline'

export interface AnalyticsProviderProps {
  /** Starts the page's tracker with this configuration (once; later renders reuse it). */
  config?: TrackerConfig
  /** Or hand down a tracker you created yourself. */
  tracker?: Tracker
  children?: ReactNode
}

/**
 * Starts the page's tracker and provides it to useAnalytics(). Server rendering creates
 * nothing. Unmounting does not stop the tracker (call tracker.destroy() for that).
 */
export function AnalyticsProvider(props: AnalyticsProviderProps): ReactElement

type Methods = Pick<
  Tracker,
  | 'track'
  | 'trackPageView'
  | 'trackProductView'
  | 'trackAffiliateClick'
  | 'trackSearchQuery'
  | 'trackSearchFilter'
  | 'trackSearchSort'
  | 'trackZeroResults'
  | 'trackProductHover'
  | 'trackProductCompare'
  | 'trackProductWishlist'
  | 'trackCopiedCoupon'
  | 'trackSharedProduct'
  | 'identify'
  | 'setConsent'
  | 'flush'
>

/**
 * The tracker's methods, stable across renders; each does nothing (and returns undefined)
 * while there is no tracker, e.g. while rendering on the server.
 */
export interface Analytics extends Methods {
  /** The provided tracker; null outside a provider (the methods then use the page's). */
  tracker: Tracker | null
  /** The seed's name for track. */
  trackEvent: Tracker['track']
}

export function useAnalytics(): Analytics

declare global {
  interface Window {
    SightlineReact?: {
      AnalyticsProvider: typeof AnalyticsProvider
      useAnalytics: typeof useAnalytics
    }
  }
}
