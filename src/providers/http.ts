// The `http` provider: handles below a base URL; 404/410 mean absent, any other non-2xx is an error.
import { TemplatesError, redactUrl } from '../errors.js';
import { checkHandle } from '../repository/handle.js';
import { authFailed, type HttpClient } from '../http/client.js';
import type { OpenOptions, OpenedFile, Provider } from './types.js';

/** Joins like lago's posixpath.join(baseurl, handle), with each handle segment percent-encoded. */
export function joinUrl(baseurl: string, handle: string, suffix: string): string {
  const base = baseurl.endsWith('/') ? baseurl : `${baseurl}/`;
  return base + (handle + suffix).split('/').map(encodeURIComponent).join('/');
}

/** A strong ETag, else Last-Modified: what If-Range may carry (weak ETags are not allowed there). */
function validatorOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const etag = headers.etag;
  if (typeof etag === 'string' && etag.startsWith('"')) return etag;
  const modified = headers['last-modified'];
  return typeof modified === 'string' && modified ? modified : undefined;
}

/** The first byte and total length of a 206 response (`Content-Range: bytes START-END/TOTAL`). */
function contentRange(value: string | string[] | undefined): { start: number; total?: number } | undefined {
  const match = typeof value === 'string' ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), ...(match[2] !== '*' ? { total: Number(match[2]) } : {}) };
}

export function createHttpProvider(baseurl: string, client: HttpClient): Provider {
  const locate = (handle: string, suffix: string) => redactUrl(joinUrl(baseurl, handle, suffix));
  return {
    locate,
    async open(handle: string, suffix: string, options: OpenOptions = {}): Promise<OpenedFile | null> {
      const problem = checkHandle(handle);
      if (problem) throw new TemplatesError('ENTRY_BROKEN', problem, { url: locate(handle, suffix) });
      const url = joinUrl(baseurl, handle, suffix);
      const signal = options.signal ? { signal: options.signal } : {};
      const { resume } = options;
      let response = await client.get(
        url,
        resume ? { ...signal, headers: { range: `bytes=${resume.offset}-`, 'if-range': resume.validator } } : signal,
      );
      if (
        resume &&
        (response.status === 416 ||
          (response.status === 206 && contentRange(response.headers['content-range'])?.start !== resume.offset))
      ) {
        // The partial copy no longer fits the file (it shrank, or the server answered another range): start over.
        response.body.destroy();
        response = await client.get(url, signal);
      }
      const validator = validatorOf(response.headers);
      if (response.status === 206 && resume) {
        const range = contentRange(response.headers['content-range'])!;
        return {
          location: redactUrl(url),
          ...(range.total !== undefined ? { size: range.total } : {}),
          offset: resume.offset,
          ...(validator ? { validator } : {}),
          body: response.body,
        };
      }
      if (response.status >= 200 && response.status < 300 && response.status !== 206) {
        return {
          location: redactUrl(url),
          ...(response.size !== undefined ? { size: response.size } : {}),
          offset: 0,
          ...(validator ? { validator } : {}),
          body: response.body,
        };
      }
      response.body.destroy();
      if (response.status === 404 || response.status === 410) return null;
      if (response.status === 401 || response.status === 403) throw authFailed(url, response.status);
      const shown = redactUrl(url);
      const redirect = response.status >= 300 && response.status < 400;
      throw new TemplatesError(
        'SOURCE_HTTP_ERROR',
        redirect
          ? `${shown}: redirect to an unsupported location ${JSON.stringify(String(response.headers.location ?? ''))}`
          : `${shown}: HTTP ${response.status}`,
        {
          url: shown,
          status: response.status,
          hint: redirect
            ? 'only http and https redirects are followed'
            : 'the server failed; try again later or ask its owner',
        },
      );
    },
  };
}
