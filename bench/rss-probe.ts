// Loaded with `node --import` into a benchmarked fetch: appends the process's peak RSS (KiB) to $BENCH_RSS_FILE at exit.
import { appendFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) process.on('exit', () => appendFileSync(file, `${process.resourceUsage().maxRSS}\n`));
