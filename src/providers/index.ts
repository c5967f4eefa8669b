// Provider choice: one provider per source, picked by the source's type.
import type { SourceSpec } from '../repository/model.js';
import { createFileProvider } from './file.js';
import type { HttpClient } from '../http/client.js';
import { createHttpProvider } from './http.js';
import type { Provider } from './types.js';

export function providerFor(source: SourceSpec, http: HttpClient): Provider {
  switch (source.type) {
    case 'file':
      return createFileProvider(source.root);
    case 'http':
      return createHttpProvider(source.baseurl, http);
  }
}

export type { Provider, OpenedFile } from './types.js';
