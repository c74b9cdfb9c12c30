// The captured samples (test/fixtures/client-samples) are found from dist/ and are what they
// claim to be: iproute2 lists and nftables rulesets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINKS, NEIGHBOURS, NFT_SIMPLE, NFT_SUBSET, ROUTES4, ROUTES6 } from '../support/client-samples.js';

test('captured samples are iproute2 / nft JSON', () => {
  for (const dump of [LINKS, ROUTES4, ROUTES6, NEIGHBOURS]) assert.ok(Array.isArray(dump) && dump.length > 0);
  for (const dump of [NFT_SIMPLE, NFT_SUBSET])
    assert.ok(typeof dump === 'object' && dump !== null && 'nftables' in dump);
});
