// Provider choice: one provider per source, picked by the source's type.
import type { SourceSpec } from '../repository/model.js';
import { createFileProvider } from './file.js';
import type { HttpClient } from '../http/client.js';
import { createHttpProvider } from './http.js';
import { createOciProvider } from './oci.js';
import type { Provider } from './types.js';

/** Where an `oci` source finds registry credentials (the context's environment and home). */
export interface ProviderEnv {
  env: Record<string, string | undefined>;
  home: string;
}

export function providerFor(
  source: SourceSpec,
  http: HttpClient,
  where: ProviderEnv = { env: {}, home: '/' },
): Provider {
  switch (source.type) {
    case 'oci':
      return createOciProvider(source, http, where);
    case 'file':
      return createFileProvider(source.root);
    case 'http':
      return createHttpProvider(source.baseurl, http);
  }
}

export type { Provider } from './types.js';
