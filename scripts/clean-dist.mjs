// Empties dist/ before a build, so files of renamed or removed modules are never packed or imported.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist/', import.meta.url), { recursive: true, force: true });
