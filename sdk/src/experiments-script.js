// The served experiments build (sightline-experiments.js), loaded after sightline.js:
// gives the page's tracker getVariant(), now or as soon as initAnalytics() creates it.
import { assignVariant, installExperiments } from './experiments.js'

try {
  const sightline = window.sightline
  const init = sightline.initAnalytics
  sightline.installExperiments = installExperiments
  sightline.assignVariant = assignVariant
  sightline.initAnalytics = (config) => installExperiments(init(config))
  installExperiments(sightline.getTracker())
} catch (e) {}
