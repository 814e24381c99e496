// The served <script> build: window.sightline, and zero-code start from data-* attributes:
// <script src=".../sdk/v1/sightline.js" data-site-key="pk_..." [data-endpoint="/e"]></script>
import { AnalyticsTracker, PrivacyManager, getTracker, initAnalytics, provideExtras, version } from './core.js'

try {
  const existing = window.sightline
  // Included twice: keep the first copy and its tracker.
  const sightline =
    existing && existing.getTracker
      ? existing
      : (window.sightline = { initAnalytics, getTracker, AnalyticsTracker, PrivacyManager, provideExtras, version })
  const data = document.currentScript.dataset
  if (data.siteKey) {
    const config = {}
    for (const k in data) {
      const v = data[k]
      config[k] = v == '' || v == 'true' ? true : v == 'false' ? false : isNaN(v) ? v : +v
    }
    config.siteKey = data.siteKey
    sightline.initAnalytics(config)
  }
} catch (e) {}
