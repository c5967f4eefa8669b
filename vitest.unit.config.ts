// The fast tier (npm run test:unit): the pure modules' tests, no nginx, registry or serve process; seconds, for the edit-test loop.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/catalogues/formats.test.ts',
      'test/cli/options.test.ts',
      'test/farm/parts.test.ts',
      'test/fetch/{sparse-runs,stream-plan}.test.ts',
      'test/fuzz/*.test.ts',
      'test/house/*.test.ts',
      'test/http/request.test.ts',
      'test/jobs/database.test.ts',
      'test/oci/artifact.test.ts',
      'test/oci/auth.test.ts',
      'test/publish/naming.test.ts',
      'test/repository/{digest,lazy-map,mirrors,parse,resolve}.test.ts',
      'test/server/http-status.test.ts',
      'test/trust/minisign.test.ts',
    ],
    testTimeout: 20_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
