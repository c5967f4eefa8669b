// npm run fuzz -- --minutes N [--seed S]: the fuzz tier run long, its seed printed; a failing input is kept as a regression.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error(`fuzz: --minutes takes a positive number, not ${JSON.stringify(values.minutes)}`);
  process.exit(2);
}
const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
const file = join('test', 'fuzz', 'parsers.test.ts');
// Each parser gets its share of the minutes (vitest runs the tests of one file one after another).
const share = (readFileSync(join(root, file), 'utf8').match(/^\s*fuzz\(/gm) ?? []).length;
console.error(
  `fuzz: ${share} parsers, ${minutes} min in all, seed ${seed} (again: npm run fuzz -- --minutes ${minutes} --seed ${seed})`,
);
const run = spawnSync(
  join(root, 'node_modules', '.bin', 'vitest'),
  ['run', '--config', 'vitest.unit.config.ts', file],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      FUZZ_MINUTES: String(minutes),
      FUZZ_SEED: seed,
      FUZZ_SHARE: String(share),
      FUZZ_RECORD: '1',
    },
  },
);
if (run.status !== 0)
  console.error(`fuzz: failed with seed ${seed}; the failing inputs are kept in test/fuzz/regressions/ (commit them)`);
process.exit(run.status ?? 1);
