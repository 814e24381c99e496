// The served React build: window.SightlineReact, for pages that have window.React and the
// core (load it after both).
import { AnalyticsProvider, useAnalytics } from './react.js'

window.SightlineReact = { AnalyticsProvider, useAnalytics }
