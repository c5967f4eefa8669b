// Bundles the compiled CLI into dist/bundle/ so that a cache hit loads two files instead of 50 modules.
// fetch (the command provisioning tools and CI call on every boot) and all it imports statically goes
// into one chunk; the other commands and dependencies still load only when a command needs them.
// Rollup, not esbuild: esbuild splits shared code into ~25 chunks per command, which costs the time saved. Its
// WebAssembly build: the native one needs a per-platform package the lock file cannot list for every platform here.
import { readFileSync } from 'node:fs';
import { rollup } from '@rollup/wasm-node';

const HOT_COMMANDS = /\/dist\/cli\/commands\/(fetch)\.js$/;
const { name, version } = JSON.parse(readFileSync('package.json', 'utf8'));

/** version.js reads package.json relative to itself, which the bundle moves; the bundle carries the values. */
const bakedVersion = {
  name: 'baked-version',
  load: (id) =>
    id.endsWith('/dist/version.js')
      ? [
          `export const TOOL_NAME = ${JSON.stringify(name)};`,
          `export const TOOL_VERSION = ${JSON.stringify(version)};`,
          'export const USER_AGENT = `${TOOL_NAME}/${TOOL_VERSION} (node ${process.versions.node})`;',
        ].join('\n')
      : null,
};

/** The project's modules that `from` imports statically, itself included. */
function staticClosure(from, getModuleInfo, seen = new Set()) {
  if (seen.has(from)) return seen;
  seen.add(from);
  for (const id of getModuleInfo(from)?.importedIds ?? []) if (id.startsWith('/')) staticClosure(id, getModuleInfo, seen);
  return seen;
}

let hot;
const bundle = await rollup({
  input: { main: 'dist/cli/main.js' },
  // Dependencies stay in node_modules, imported where the code imports them (mostly lazily).
  external: (id) => !id.startsWith('.') && !id.startsWith('/'),
  plugins: [bakedVersion],
});
await bundle.write({
  dir: 'dist/bundle',
  format: 'es',
  // main.js would otherwise import every builtin the hot chunk imports, itself.
  hoistTransitiveImports: false,
  chunkFileNames: '[name]-[hash].js',
  manualChunks(id, { getModuleIds, getModuleInfo }) {
    hot ??= new Set([...getModuleIds()].filter((m) => HOT_COMMANDS.test(m)).flatMap((m) => [...staticClosure(m, getModuleInfo)]));
    return hot.has(id) ? 'hot' : undefined;
  },
});
await bundle.close();
