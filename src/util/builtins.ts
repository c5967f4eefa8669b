// Built-in modules a cache hit never needs, loaded on first use: a static import of node:crypto costs every start ~5 ms.
import type * as Crypto from 'node:crypto';
import type * as Fs from 'node:fs';

/** node:crypto, loaded when first called (process.getBuiltinModule caches it). */
export const crypto = (): typeof Crypto => process.getBuiltinModule('node:crypto');

/**
 * node:fs (for its synchronous calls), without the ESM facade that `import … from 'node:fs'` builds: the facade reads
 * every export, and its ReadStream getter loads all of node:stream.
 */
export const fsSync = (): typeof Fs => process.getBuiltinModule('node:fs');
