// String formats of the config file. Each check returns undefined when the text is fine, or
// the reason it is not (the caller adds the field path and the bad value).

import { isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '../errors/index.js';
import { isLowOrderPoint } from '../crypto/index.js';
import { addressBytes, formatAddress, isUnicastAddress } from '../net/index.js';

/** Linux interface names: at most IFNAMSIZ - 1 = 15 bytes; a narrower alphabet than the kernel's
 *  (no '/', ':', '@', whitespace, and no leading '_' so a name can never be "__proto__"). */
const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
export const INTERFACE_NAME_RULE =
  'must be an interface name: 1 to 15 characters of letters, digits, "_", "." or "-", starting with a letter or digit';

export function checkInterfaceName(name: string): string | undefined {
  return INTERFACE_NAME.test(name) ? undefined : INTERFACE_NAME_RULE;
}

const NETWORK_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const NETWORK_NAME_RULE =
  'must match [a-z][a-z0-9_-]{0,31}: a lower-case letter, then up to 31 lower-case letters, digits, "_" or "-"';

export function checkNetworkName(name: string): string | undefined {
  return NETWORK_NAME.test(name) ? undefined : NETWORK_NAME_RULE;
}

const MAC = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;

export function checkMac(mac: string): string | undefined {
  if (!MAC.test(mac)) return 'must be a MAC address of six colon-separated hex pairs, e.g. "02:00:00:00:01:01"';
  const firstOctet = Number.parseInt(mac.slice(0, 2), 16);
  // The MAC is a classification key that must select one virtual router's traffic.
  if ((firstOctet & 1) === 1)
    return 'must be a unicast MAC: a multicast or broadcast address cannot identify one virtual router';
  if (/^(?:00:){5}00$/.test(mac)) return 'must not be the all-zero MAC';
  return undefined;
}

/** Lower-case form used in memory, so "02:AB:..." and "02:ab:..." are one classification key. */
export function normalizeMac(mac: string): string {
  return mac.toLowerCase();
}

/** A router's own address on a segment: one unicast IPv4 or IPv6 address, no prefix length or zone. */
export function checkRouterAddress(text: string): string | undefined {
  const bytes = addressBytes(text);
  if (!bytes || text.includes('%')) {
    return 'must be an IPv4 or IPv6 address, e.g. "10.1.0.1" or "fe80::1" (no prefix length, no zone)';
  }
  if (!isUnicastAddress(bytes)) {
    return 'must be a unicast address: a router cannot own a multicast, broadcast or unspecified address';
  }
  return undefined;
}

/** The RFC 5952 / dotted-quad spelling, so that "2001:DB8::1" and "2001:db8:0::1" are one address. */
export function normalizeAddress(text: string): string {
  return formatAddress(addressBytes(text)!);
}

export const PUBLIC_KEY_BYTES = 32;
const CANONICAL_BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

export function checkPublicKey(key: string): string | undefined {
  const rule = `must be the standard base64 encoding of a ${PUBLIC_KEY_BYTES}-byte public key (44 characters ending in "=")`;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(key)) return `${rule}; it contains characters outside the base64 alphabet`;
  const decoded = Buffer.from(key, 'base64');
  if (decoded.length !== PUBLIC_KEY_BYTES) return `${rule}; it decodes to ${decoded.length} bytes`;
  // Only the canonical spelling, so that equal keys are equal strings (uniqueness check).
  if (!CANONICAL_BASE64_32.test(key) || decoded.toString('base64') !== key)
    return `${rule}; it is not in canonical form`;
  // The secure channel refuses these (crypto/keys.ts): a config that accepted one would fail later, half-applied.
  if (isLowOrderPoint(decoded))
    return "is a small-order X25519 point (it would give a predictable shared secret): generate the router's key with xnetmon keygen";
  return undefined;
}

export interface ListenAddress {
  /** IPv4 literal, IPv6 literal (without brackets) or host name. */
  readonly host: string;
  /** 0 lets the kernel choose (useful in tests). */
  readonly port: number;
  /** 'auto' (host.listen only): every address of the host on its routers' segments, resolved at start. */
  readonly family: 'ipv4' | 'ipv6' | 'name' | 'auto';
}

/** The host part of host.listen that means "the host's addresses on its routers' segments" (docs/config.md). */
export const AUTO_LISTEN_HOST = 'auto';

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const LISTEN_RULE =
  'must be "host:port" with an IPv4 address or host name, or "[ipv6]:port", and a port from 0 to 65535';

/** Splits "host:port" / "[ipv6]:port"; returns the reason as a string when malformed. */
export function splitListenAddress(text: string): ListenAddress | string {
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) return LISTEN_RULE;
  const host = match[1]!;
  const port = Number(match[2]);
  if (port > 65535) return `${LISTEN_RULE}; port ${port} is too large`;
  if (bracketed) {
    return isIPv6(host) ? { host, port, family: 'ipv6' } : `${LISTEN_RULE}; "${host}" is not an IPv6 address`;
  }
  if (isIPv4(host)) return { host, port, family: 'ipv4' };
  if (host === AUTO_LISTEN_HOST) return { host, port, family: 'auto' };
  // Digits and dots only but not a valid IPv4 address (e.g. 300.1.1.1): a typo, not a name.
  if (/^[\d.]+$/.test(host) || !HOST_NAME.test(host))
    return `${LISTEN_RULE}; "${host}" is neither an IPv4 address nor a host name`;
  return { host, port, family: 'name' };
}

export function checkListenAddress(text: string, options: { allowAuto?: boolean } = {}): string | undefined {
  const parsed = splitListenAddress(text);
  if (typeof parsed === 'string') return parsed;
  if (parsed.family === 'auto' && !options.allowAuto)
    return `"${AUTO_LISTEN_HOST}" is only for host.listen; give an address`;
  return undefined;
}

/** host.listen: also "auto:PORT". */
export function checkChannelListenAddress(text: string): string | undefined {
  return checkListenAddress(text, { allowAuto: true });
}

// sun_path of struct sockaddr_un is 108 bytes including the terminating NUL.
const MAX_UNIX_SOCKET_PATH_BYTES = 107;

export function checkAbsolutePath(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path (starting with "/")';
  if (path.includes('\0')) return 'must not contain a NUL byte';
  return undefined;
}

export function checkUnixSocketPath(path: string): string | undefined {
  const problem = checkAbsolutePath(path);
  if (problem) return problem;
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_SOCKET_PATH_BYTES)
    return `must be at most ${MAX_UNIX_SOCKET_PATH_BYTES} bytes long (a Unix socket path limit); it is ${bytes}`;
  return undefined;
}

/** Parses a listen address of the config ("0.0.0.0:7400", "[::1]:7400", "localhost:0"). */
export function parseListenAddress(
  text: string,
  path = 'listen',
  options: { allowAuto?: boolean } = {},
): ListenAddress {
  const problem = checkListenAddress(text, options);
  if (problem) throw new ValidationError(path, `${JSON.stringify(text)} is invalid: ${problem}`);
  return splitListenAddress(text) as ListenAddress;
}
