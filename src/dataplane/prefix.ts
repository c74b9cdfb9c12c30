// IP prefixes as the data plane needs them: validated, normalised, fast to encode.
import { isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '../errors/index.js';
import { ipv4Bytes, ipv6Bytes } from '../packet/index.js';

export interface Prefix {
  readonly family: 4 | 6;
  /** Network-order bytes (4 or 16), host bits zero. */
  readonly addr: Buffer;
  readonly length: number;
}

/** Parses "10.0.0.0/8" or "2001:db8::/32"; a bare address is a host prefix. Host bits must be zero. */
export function parsePrefix(text: string, path = 'prefix'): Prefix {
  const [addrText, lenText, ...rest] = text.trim().split('/');
  if (rest.length) throw new ValidationError(path, `malformed prefix "${text}"`);
  const family = isIPv4(addrText) ? 4 : isIPv6(addrText) ? 6 : 0;
  if (!family) throw new ValidationError(path, `"${text}" is not an IPv4 or IPv6 prefix`);
  const max = family === 4 ? 32 : 128;
  const length = lenText === undefined ? max : Number(lenText);
  if (!Number.isInteger(length) || length < 0 || length > max || (lenText !== undefined && !/^\d+$/.test(lenText))) {
    throw new ValidationError(path, `prefix length in "${text}" must be 0..${max}`);
  }
  const addr = family === 4 ? ipv4Bytes(addrText) : ipv6Bytes(addrText);
  for (let bit = length; bit < max; bit++) {
    if (addr[bit >> 3] & (0x80 >> (bit & 7))) throw new ValidationError(path, `"${text}" has host bits set (did you mean ${formatPrefix(mask({ family, addr, length }))}?)`);
  }
  return { family, addr, length };
}

function mask(p: Prefix): Prefix {
  const addr = Buffer.from(p.addr);
  const max = p.family === 4 ? 32 : 128;
  for (let bit = p.length; bit < max; bit++) addr[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { ...p, addr };
}

export function formatPrefix(p: Prefix): string {
  if (p.family === 4) return `${Array.from(p.addr).join('.')}/${p.length}`;
  const words = Array.from({ length: 8 }, (_, i) => p.addr.readUInt16BE(i * 2).toString(16));
  // Compress the longest run of zero words, as inet_ntop does.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const text = best < 0 ? words.join(':') : `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
  return `${text}/${p.length}`;
}
