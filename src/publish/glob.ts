// Shell-style globs for `index --include/--exclude` (pure): `*`, `**`, `?` and `[…]` over `/`-separated paths.

/** `*` and `?` stay inside one path segment; `**` spans segments (`a/**` matches everything below `a`). */
function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slashAfter = glob[i + 2] === '/';
        out += slashAfter ? '(?:.*/)?' : '.*';
        i += slashAfter ? 2 : 1;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) out += '\\[';
      else {
        const body = glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * Whether `path` (relative, `/`-separated) matches `glob`. A glob without `/` is matched against the file name
 * alone, so `*.qcow2` finds qcow2 files at any depth, as in .gitignore.
 */
export function matchesGlob(path: string, glob: string): boolean {
  const target = glob.includes('/') ? path : path.slice(path.lastIndexOf('/') + 1);
  return globToRegExp(glob).test(target);
}

/** Selected when it matches some include (or there are none) and no exclude. */
export function selectedByGlobs(path: string, include: readonly string[], exclude: readonly string[]): boolean {
  if (include.length && !include.some((glob) => matchesGlob(path, glob))) return false;
  return !exclude.some((glob) => matchesGlob(path, glob));
}
