// The `http` provider: handles below a base URL; 404/410 mean absent, any other non-2xx is an error.
import { TemplatesError, redactUrl } from '../errors.js';
import { checkHandle } from '../spec/handle.js';
import type { HttpClient } from './http-client.js';
import type { OpenOptions, OpenedFile, Provider } from './types.js';

/** Joins like lago's posixpath.join(baseurl, handle), with each handle segment percent-encoded. */
export function joinUrl(baseurl: string, handle: string, suffix: string): string {
  const base = baseurl.endsWith('/') ? baseurl : `${baseurl}/`;
  return base + (handle + suffix).split('/').map(encodeURIComponent).join('/');
}

export function createHttpProvider(baseurl: string, client: HttpClient): Provider {
  const locate = (handle: string, suffix: string) => redactUrl(joinUrl(baseurl, handle, suffix));
  return {
    locate,
    async open(handle: string, suffix: string, options: OpenOptions = {}): Promise<OpenedFile | null> {
      const problem = checkHandle(handle);
      if (problem) throw new TemplatesError('ENTRY_BROKEN', problem, { url: locate(handle, suffix) });
      const url = joinUrl(baseurl, handle, suffix);
      const response = await client.get(url, options.signal ? { signal: options.signal } : {});
      if (response.status >= 200 && response.status < 300) {
        return { location: redactUrl(url), ...(response.size !== undefined ? { size: response.size } : {}), body: response.body };
      }
      response.body.destroy();
      if (response.status === 404 || response.status === 410) return null;
      const shown = redactUrl(url);
      const redirect = response.status >= 300 && response.status < 400;
      throw new TemplatesError(
        'SOURCE_HTTP_ERROR',
        redirect
          ? `${shown}: redirect to an unsupported location ${JSON.stringify(String(response.headers.location ?? ''))}`
          : `${shown}: HTTP ${response.status}`,
        { url: shown, status: response.status, hint: redirect ? 'only http and https redirects are followed' : 'the server failed; try again later or ask its owner' },
      );
    },
  };
}
