// Builds the tracker. Run with `npm run build` (or `python3 tasks.py sdk` from the repository root).
//
// Shipped with the Python package (committed, served at /sdk/v1/):
//   ../src/sightline/tracker/dist/sightline.js        the <script> build (window.sightline)
//   ../src/sightline/tracker/dist/sightline-extras.js its optional features, loaded lazily
//   ../src/sightline/tracker/dist/sightline-experiments.js  getVariant() for A/B tests (opt-in)
//   ../src/sightline/tracker/dist/sightline-react.js  React bindings for pages with window.React
// For bundlers (npm package, not committed):
//   dist/sightline.mjs, dist/react.mjs
// Test fixtures (committed): the pinned React UMD builds the browser tests load.
import { build } from 'esbuild'
import { minify } from 'terser'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'))
const shipped = join(here, '..', 'src', 'sightline', 'tracker', 'dist')
const local = join(here, 'dist')
const vendor = join(here, '..', 'tests', 'browser', 'fixtures', 'vendor')
const define = { __VERSION__: JSON.stringify(pkg.version), __LAZY__: 'false' }
const banner = `/*! Sightline tracker ${pkg.version} | MIT */`

/** Resolve bare imports to globals of the page (for the <script> builds). */
const globals = (map) => ({
  name: 'globals',
  setup(b) {
    const filter = new RegExp(`^(${Object.keys(map).map((k) => k.replace(/[.]/g, '\\.')).join('|')})$`)
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'global' }))
    b.onLoad({ filter: /.*/, namespace: 'global' }, (args) => ({ contents: map[args.path], loader: 'js' }))
  },
})

async function bundle(entry, options) {
  const result = await build({
    entryPoints: [join(here, 'src', entry)],
    bundle: true,
    write: false,
    target: 'es2020',
    define,
    legalComments: 'none',
    // tsconfig.json is for checking the declarations, not for building
    tsconfigRaw: {},
    logLevel: 'warning',
    ...options,
  })
  return result.outputFiles[0].text
}

async function shrink(code, module) {
  const out = await minify(code, {
    ecma: 2020,
    module,
    // a <script> build must define nothing but what it assigns to window
    toplevel: module,
    compress: { passes: 3, unsafe_arrows: true, unsafe_methods: true, pure_getters: true },
    mangle: true,
    format: { comments: false },
  })
  return out.code + '\n'
}

function write(dir, name, text) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, name), text)
  const raw = Buffer.byteLength(text)
  const gz = gzipSync(text, { level: 9 }).length
  console.log(`${join(dir, name).slice(join(here, '..').length + 1).padEnd(48)} ${String(raw).padStart(7)} B  ${String(gz).padStart(6)} B gzip`)
}

const lazy = { ...define, __LAZY__: 'true' }
write(shipped, 'sightline.js', await shrink(await bundle('script.js', { format: 'iife', define: lazy }), false))
write(shipped, 'sightline-extras.js', await shrink(await bundle('extras-script.js', { format: 'iife', define: lazy }), false))
write(shipped, 'sightline-experiments.js', await shrink(await bundle('experiments-script.js', { format: 'iife', define: lazy }), false))

const reactGlobals = globals({
  react: 'module.exports = window.React',
  // the core is the page's window.sightline, looked up when called
  './index.js':
    'module.exports = { getTracker: () => window.sightline && window.sightline.getTracker(), ' +
    'initAnalytics: (c) => window.sightline.initAnalytics(c) }',
})
const react = await bundle('react-script.js', { format: 'iife', plugins: [reactGlobals] })
write(shipped, 'sightline-react.js', await shrink(react, false))

write(local, 'sightline.mjs', await shrink(await bundle('index.js', { format: 'esm' }), true))
const coreExternal = {
  name: 'core',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: './sightline.mjs', external: true }))
  },
}
write(local, 'react.mjs', await shrink(await bundle('react.js', { format: 'esm', external: ['react'], plugins: [coreExternal] }), true))

mkdirSync(vendor, { recursive: true })
for (const [name, file] of [
  ['react', 'umd/react.production.min.js'],
  ['react-dom', 'umd/react-dom.production.min.js'],
]) {
  const version = JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version
  copyFileSync(join(here, 'node_modules', name, file), join(vendor, `${name}-${version}.production.min.js`))
}
