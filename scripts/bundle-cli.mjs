// Bundles the compiled CLI into dist/bundle/ (CommonJS, with the dependencies a fetch loads) for a fast start.
// fetch (the command provisioning tools and CI call on every boot) and all it imports statically goes into one
// chunk, so a cache hit reads two files instead of 50 modules; other commands load only when called. Measured on
// 2 cores (medians of 40 interleaved runs, node -e 0 at 71 ms): a hit took 94 ms as ES modules, 86 ms as CommonJS
// (no ESM loader, no facades over builtins); got (since replaced by node:http), proper-lockfile (since replaced by flock) and http-proxy-agent bundled into one chunk start
// a cold fetch 50–100 ms sooner and cost 0.2 CPU-s less than as ~60 separate modules. The dependencies that only other
// commands use (fastify, better-sqlite3, …) stay in node_modules. Rollup, not esbuild: esbuild split shared code into
// ~25 chunks per command. Its WebAssembly build: the native one needs a per-platform package the lock file cannot
// list for every platform here.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import commonjs from '@rollup/plugin-commonjs';
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { rollup } from '@rollup/wasm-node';

const HOT_COMMANDS = /\/dist\/cli\/commands\/(fetch)\.js$/;
const { name, version } = JSON.parse(readFileSync('package.json', 'utf8'));
const BUILTINS = new Set([...builtinModules, ...builtinModules.map((id) => `node:${id}`)]);
/** Dependencies left in node_modules: native ones, and the large ones only serve, push and the job service load. */
const EXTERNAL = [
  'fastify',
  '@fastify/',
  'better-sqlite3',
  'prom-client',
  'bcryptjs',
  'jose',
  'tar-stream',
  'lzma-native',
  'zstd-napi',
  'execa',
  'cli-progress',
];
const external = (id) =>
  BUILTINS.has(id) ||
  EXTERNAL.some((dep) => (dep.endsWith('/') ? id.startsWith(dep) : id === dep || id.startsWith(`${dep}/`)));

/** version.js reads package.json relative to itself, which the bundle moves; the bundle carries the values. */
const bakedVersion = {
  name: 'baked-version',
  load: (id) =>
    id.endsWith('/dist/version.js')
      ? [
          `export const TOOL_NAME = ${JSON.stringify(name)};`,
          `export const TOOL_VERSION = ${JSON.stringify(version)};`,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the bundle, a template literal there
          'export const USER_AGENT = `${TOOL_NAME}/${TOOL_VERSION} (node ${process.versions.node})`;',
        ].join('\n')
      : null,
};

/** The project's modules that `from` imports statically, itself included. */
function staticClosure(from, getModuleInfo, seen = new Set()) {
  if (seen.has(from)) return seen;
  seen.add(from);
  for (const id of getModuleInfo(from)?.importedIds ?? [])
    if (id.startsWith('/') && !id.includes('/node_modules/')) staticClosure(id, getModuleInfo, seen);
  return seen;
}

/** The package directory holding a bundled module: node_modules/NAME or node_modules/@SCOPE/NAME. */
function packageDir(id) {
  const at = id.lastIndexOf('/node_modules/') + '/node_modules/'.length;
  const parts = id.slice(at).split('/');
  return id.slice(0, at) + parts.slice(0, parts[0].startsWith('@') ? 2 : 1).join('/');
}

/** Each bundled package's name, version, licence and licence text, beside the bundle (their licences ask for it). */
function thirdPartyNotice(ids) {
  const dirs = [
    ...new Set(ids.filter((id) => id.includes('/node_modules/') && !id.startsWith('\0')).map(packageDir)),
  ].sort();
  return dirs
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      const file = readdirSync(dir).find((entry) => /^(licen[cs]e|copying)/i.test(entry));
      return `${pkg.name} ${pkg.version} (${pkg.license ?? 'see below'})\n\n${file ? readFileSync(join(dir, file), 'utf8').trim() : '(no licence file shipped)'}\n`;
    })
    .join(`\n${'-'.repeat(72)}\n\n`);
}

/** The fetch's worker threads, each an entry of its own: dist/bundle/<name>-worker.cjs. */
const WORKERS = ['hash-batches', 'hash-behind', 'fifo-sink'];

/** worker-url.js finds the workers in dist/fetch/workers/; in the bundle they sit beside it. */
const bundledWorkers = {
  name: 'bundled-workers',
  load: (id) =>
    id.endsWith('/dist/fetch/worker-url.js')
      ? // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the bundle, a template literal there
        'export function workerUrl(name) { return new URL(`./${name}-worker.cjs`, import.meta.url); }'
      : null,
};

let hot;
const bundle = await rollup({
  input: {
    main: 'dist/cli/main.js',
    ...Object.fromEntries(WORKERS.map((name) => [`${name}-worker`, `dist/fetch/workers/${name}.js`])),
  },
  external,
  plugins: [
    bakedVersion,
    bundledWorkers,
    nodeResolve({ preferBuiltins: true, exportConditions: ['node', 'import', 'default'] }),
    commonjs(),
  ],
  onwarn(warning, warn) {
    // Cycles inside dependencies (graceful-fs) and their top-level `this` are theirs and harmless.
    if (warning.code === 'CIRCULAR_DEPENDENCY' || warning.code === 'THIS_IS_UNDEFINED') return;
    warn(warning);
  },
});
await bundle.write({
  dir: 'dist/bundle',
  format: 'cjs',
  // dist/ is ESM by package.json's "type"; .cjs makes these CommonJS wherever they are.
  entryFileNames: '[name].cjs',
  chunkFileNames: '[name]-[hash].cjs',
  // main.cjs would otherwise require every builtin the hot chunk requires, itself.
  hoistTransitiveImports: false,
  manualChunks(id, { getModuleIds, getModuleInfo }) {
    hot ??= new Set(
      [...getModuleIds()].filter((m) => HOT_COMMANDS.test(m)).flatMap((m) => [...staticClosure(m, getModuleInfo)]),
    );
    return hot.has(id) ? 'hot' : undefined;
  },
});
writeFileSync('dist/bundle/THIRD-PARTY-LICENSES.txt', thirdPartyNotice(bundle.watchFiles));
await bundle.close();
