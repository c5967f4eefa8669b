// Registry auth helpers (pure): challenges parsed, scopes merged per resource so a token is asked once per set.
import { describe, expect, it } from 'vitest';
import { mergeScopes, parseChallenge } from '../../src/oci/auth.js';

describe('registry auth', () => {
  it("merges a challenge's scope with ours whatever the order of its actions (distribution lists them in map order)", () => {
    expect(mergeScopes(['repository:team/tiny:pull,push', 'repository:team/tiny:push,pull'])).toEqual([
      'repository:team/tiny:pull,push',
    ]);
    expect(mergeScopes(['repository:a:push', 'repository:b:pull', 'repository:a:pull'])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
    expect(mergeScopes(['registry:catalog:*', 'repository:127.0.0.1:5000/x:pull'])).toEqual([
      'registry:catalog:*',
      'repository:127.0.0.1:5000/x:pull',
    ]);
  });

  it('parses Bearer challenges with quoted commas', () => {
    expect(
      parseChallenge('Bearer realm="https://auth.example/token",service="registry",scope="repository:a:push,pull"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry', scope: 'repository:a:push,pull' },
    });
  });
});
