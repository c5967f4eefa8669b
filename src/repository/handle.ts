// Handles: a source-relative path that must never climb out of its source.

/** Returns what is wrong with a handle, or undefined when it is a safe relative path. */
export function checkHandle(handle: string): string | undefined {
  if (handle.length === 0) return 'empty handle';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this check's purpose
  if (/[\u0000-\u001f\u007f]/.test(handle)) return 'handle contains control characters';
  if (handle.startsWith('/') || handle.includes('\\') || /^[a-z][a-z0-9+.-]*:\/\//i.test(handle)) {
    return `handle ${JSON.stringify(handle)} must be a relative path`;
  }
  if (handle.split('/').some((part) => part === '..' || part === '.'))
    return `handle ${JSON.stringify(handle)} must not contain "." or ".." segments`;
  return undefined;
}
