// The lazily loaded chunk of the <script> build: hands the optional features to the core.
import { installExtras } from './extras.js'

try {
  window.sightline.provideExtras(installExtras)
} catch (e) {}
