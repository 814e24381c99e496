// The npm build: the public API with the optional features bundled in.
import { installExtras } from './extras.js'
import { provideExtras } from './tracker.js'

export * from './core.js'
export { assignVariant, assignmentHash, installExperiments } from './experiments.js'
provideExtras(installExtras)
