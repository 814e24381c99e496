// The public API without the optional features (the <script> build loads those lazily).
import { AnalyticsTracker } from './tracker.js'

export { AnalyticsTracker, provideExtras, uuid } from './tracker.js'
export { PrivacyManager } from './privacy.js'
export const version = __VERSION__

let current = null

/** Creates (once) and starts the page's tracker; later calls return the same one. */
export function initAnalytics(config) {
  if (!current) current = AnalyticsTracker(config)
  current.init()
  return current
}

export function getTracker() {
  return current
}
