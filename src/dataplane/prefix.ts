// IP prefixes as the data plane needs them: validated (host bits zero), normalised, in
// network-order bytes. Parsing and formatting are src/net's, shared with the manager.
import { ValidationError } from '../errors/index.js';
import { formatPrefixBytes, hostBitsSet, maskedAddress, parsePrefixText } from '../net/index.js';

export interface Prefix {
  readonly family: 4 | 6;
  /** Network-order bytes (4 or 16), host bits zero. */
  readonly addr: Buffer;
  readonly length: number;
}

/** Parses "10.0.0.0/8" or "2001:db8::/32"; a bare address is a host prefix. Host bits must be zero. */
export function parsePrefix(text: string, path = 'prefix'): Prefix {
  const trimmed = text.trim();
  if (trimmed.split('/').length > 2) throw new ValidationError(path, `malformed prefix "${text}"`);
  const { family, addr, length } = parsePrefixText(trimmed, path);
  if (hostBitsSet(addr, length)) {
    throw new ValidationError(
      path,
      `"${text}" has host bits set (did you mean ${formatPrefixBytes(maskedAddress(addr, length), length)}?)`,
    );
  }
  return { family, addr, length };
}

export function formatPrefix(p: Prefix): string {
  return formatPrefixBytes(p.addr, p.length, 0, p.family);
}
