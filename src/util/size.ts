// Byte sizes on the command line (pure): `1048576`, `512K`, `16M`, `16MiB`, `2G`, `1.5T` — binary units.

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Bytes, or undefined when `text` is not a size. `K`, `KB` and `KiB` all mean 1024. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text) ?? /^\s*(\d+)\s*(b)\s*$/i.exec(text);
  if (!match) return undefined;
  const bytes = Number(match[1]) * UNITS[match[2]!.toLowerCase()]!;
  return Number.isFinite(bytes) ? Math.round(bytes) : undefined;
}

/** `1.5 GiB`-style, for humans. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
