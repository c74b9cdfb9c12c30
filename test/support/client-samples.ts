// What a router's kernel says, captured (test/fixtures/client-samples/README.md gives the
// commands): iproute2 and nftables JSON the client's parsers are tested against.
import { readFixture } from './fixtures.js';

const sample = (name: string): unknown => readFixture(`client-samples/${name}.json`);

/** `ip -json link show` */
export const LINKS = sample('links');
/** `ip -json -4 route show table all` after the routes listed in the README */
export const ROUTES4 = sample('routes4');
/** `ip -json -6 route show table all` after the routes listed in the README */
export const ROUTES6 = sample('routes6');
/** `ip -json neigh show`: permanent, reachable, incomplete and failed entries */
export const NEIGHBOURS = sample('neighbours');
/** `nft -j list ruleset`: inet filter forward, policy accept, supported and unsupported rules */
export const NFT_SIMPLE = sample('nft-simple');
/** `nft -j list ruleset`: inet filter forward policy drop + jump, ip6, ip mangle, bridge tables */
export const NFT_SUBSET = sample('nft-subset');
