// IP addresses, prefixes and MACs between text and network-order bytes: the one parser and
// formatter that the data plane, the update protocol, the manager, the client and the packet
// builder share. A leaf module on purpose: the client runs inside a virtual router, where the
// BPF loader (and libbpf) is neither present nor needed.
import { isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '../errors/index.js';

export type Family = 4 | 6;

export function addressBytesLength(family: Family): 4 | 16 {
  return family === 4 ? 4 : 16;
}

export function maxPrefixLength(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

function ipv4ToBytes(text: string, out: Uint8Array, offset: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}

/** Network-order bytes of an IPv4 or IPv6 literal, or undefined when `text` is neither. */
export function addressBytes(text: string): Buffer | undefined {
  if (isIPv4(text)) {
    const out = Buffer.alloc(4);
    ipv4ToBytes(text, out, 0);
    return out;
  }
  if (!isIPv6(text)) return undefined;
  // Zone ids ("fe80::1%eth0") are accepted by isIPv6 but name no address bytes.
  const bare = text.split('%')[0]!;
  const out = Buffer.alloc(16);
  let head = bare;
  let tail = '';
  const gap = bare.indexOf('::');
  if (gap >= 0) {
    head = bare.slice(0, gap);
    tail = bare.slice(gap + 2);
  }
  const words = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const expand = (groups: string[]): number[] => {
    const bytes: number[] = [];
    for (const group of groups) {
      if (group.includes('.')) {
        // Embedded IPv4 (::ffff:192.0.2.1): four bytes in place of two groups.
        const v4 = Buffer.alloc(4);
        ipv4ToBytes(group, v4, 0);
        bytes.push(...v4);
      } else {
        const word = Number.parseInt(group, 16);
        bytes.push(word >> 8, word & 0xff);
      }
    }
    return bytes;
  };
  const left = expand(words(head));
  const right = expand(words(tail));
  Buffer.from(left).copy(out, 0);
  Buffer.from(right).copy(out, 16 - right.length);
  return out;
}

/** Parses an address literal; throws ValidationError naming `path`. */
export function parseAddress(text: string, path: string): { family: Family; bytes: Buffer } {
  const bytes = addressBytes(text);
  if (!bytes) throw new ValidationError(path, `"${text}" is not an IPv4 or IPv6 address`);
  return { family: bytes.length === 4 ? 4 : 6, bytes };
}

/** The usual text form: dotted quad, or RFC 5952 IPv6 (longest zero run compressed). */
export function formatAddress(
  bytes: Uint8Array,
  offset = 0,
  family: Family = bytes.length - offset === 4 ? 4 : 6,
): string {
  if (family === 4) return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!);
  let best = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i > 1) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLength))}`;
}

export interface PrefixBytes {
  readonly family: Family;
  /** Network-order bytes (4 or 16). */
  readonly addr: Buffer;
  readonly length: number;
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a host prefix). Host bits are not checked here. */
export function parsePrefixText(text: string, path: string): PrefixBytes {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lengthText = slash < 0 ? undefined : text.slice(slash + 1);
  const addr = addressBytes(addrText);
  if (!addr) throw new ValidationError(path, `"${text}" is not an IPv4 or IPv6 prefix`);
  const family: Family = addr.length === 4 ? 4 : 6;
  const max = maxPrefixLength(family);
  if (lengthText !== undefined && !/^\d{1,3}$/.test(lengthText))
    throw new ValidationError(path, `prefix length in "${text}" must be 0..${max}`);
  const length = lengthText === undefined ? max : Number(lengthText);
  if (length > max) throw new ValidationError(path, `prefix length in "${text}" must be 0..${max}`);
  return { family, addr, length };
}

export function formatPrefixBytes(
  addr: Uint8Array,
  length: number,
  offset = 0,
  family: Family = addr.length - offset === 4 ? 4 : 6,
): string {
  return `${formatAddress(addr, offset, family)}/${length}`;
}

/** True when any bit after the first `length` bits of the address is set. */
export function hostBitsSet(
  addr: Uint8Array,
  length: number,
  offset = 0,
  byteLength: number = addr.length - offset,
): boolean {
  for (let byte = length >> 3; byte < byteLength; byte++) {
    const keep = byte === length >> 3 ? (0xff00 >> (length & 7)) & 0xff : 0;
    if ((addr[offset + byte]! & ~keep & 0xff) !== 0) return true;
  }
  return false;
}

/** A copy of the address with the bits after `length` cleared. */
export function maskedAddress(addr: Uint8Array, length: number): Buffer {
  const out = Buffer.from(addr);
  for (let byte = length >> 3; byte < out.length; byte++) {
    out[byte] = byte === length >> 3 ? out[byte]! & ((0xff00 >> (length & 7)) & 0xff) : 0;
  }
  return out;
}

/** A compact map key: hex of the address bytes, "/" and the length ("0a090000/16"). */
export function prefixKey(addr: Uint8Array, length: number): string {
  return `${Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString('hex')}/${length}`;
}

export function isUnicastAddress(bytes: Uint8Array): boolean {
  if (bytes.length === 4) {
    const first = bytes[0]!;
    if (first === 0 || first >= 224) return false; // 0/8, multicast, reserved and broadcast
    return true;
  }
  if (bytes[0] === 0xff) return false; // multicast
  return bytes.some((b) => b !== 0); // :: is unspecified
}

const MAC_TEXT = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

export function macFromBytes(bytes: Uint8Array, offset = 0): string {
  let text = '';
  for (let i = 0; i < 6; i++) text += `${i ? ':' : ''}${bytes[offset + i]!.toString(16).padStart(2, '0')}`;
  return text;
}

/** "02:00:00:00:00:01" as six bytes; throws ValidationError naming `path` when malformed. */
export function macBytes(text: string, path = 'mac'): Buffer {
  const out = Buffer.alloc(6);
  writeMac(text, out, 0, path);
  return out;
}

/** Writes "02:00:..." as six bytes; throws ValidationError naming `path` when malformed. */
export function writeMac(text: string, out: Uint8Array, offset: number, path: string): void {
  const lower = text.toLowerCase();
  if (!MAC_TEXT.test(lower)) throw new ValidationError(path, `"${text}" is not a MAC address`);
  for (let i = 0; i < 6; i++) out[offset + i] = Number.parseInt(lower.slice(i * 3, i * 3 + 2), 16);
}

export function isUnicastMac(mac: string): boolean {
  const lower = mac.toLowerCase();
  if (!MAC_TEXT.test(lower)) return false;
  if ((Number.parseInt(lower.slice(0, 2), 16) & 1) === 1) return false;
  return lower !== '00:00:00:00:00:00';
}
