// Frames built from fields, not hex literals (xdp-tools' habit), and read back
// for checks: Ethernet (+ one 802.1Q tag), ARP, IPv4 (with options), IPv6, UDP,
// TCP, ICMP. Used by the BPF unit tests, the per-packet benchmark and the lab.
import { addressBytes, macFromBytes, writeMac } from '../net/index.js';

export type Mac = string; // "02:00:00:00:00:01"

export function macBytes(mac: Mac): Buffer {
  const out = Buffer.alloc(6);
  writeMac(mac, out, 0, 'mac');
  return out;
}

export function macString(bytes: ArrayLike<number>): Mac {
  return macFromBytes(Uint8Array.from(bytes));
}

export function ipv4Bytes(addr: string): Buffer {
  const bytes = addressBytes(addr);
  if (bytes?.length !== 4) throw new Error(`bad IPv4 address ${addr}`);
  return bytes;
}

export function ipv6Bytes(addr: string): Buffer {
  const bytes = addressBytes(addr);
  if (bytes?.length !== 16) throw new Error(`bad IPv6 address ${addr}`);
  return bytes;
}

/** RFC 1071 Internet checksum over buf (optionally continuing a partial sum). */
export function internetChecksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface FrameSpec {
  src?: Mac;
  dst: Mac;
  vlan?: number;
  /** Exactly one of the layer-3 kinds. */
  ipv4?: Ipv4Spec;
  ipv6?: Ipv6Spec;
  arp?: { op: 1 | 2; senderMac: Mac; senderIp: string; targetIp: string };
  /** A raw EtherType and payload, for frames of other protocols. */
  raw?: { etherType: number; payload: Buffer };
}

export interface L4Spec {
  udp?: { sport: number; dport: number };
  tcp?: { sport: number; dport: number; flags?: number };
  icmp?: { type: number; code: number };
  payload?: Buffer | number; // bytes, or a length of zeros
}

export interface Ipv4Spec extends L4Spec {
  src: string;
  dst: string;
  ttl?: number;
  options?: Buffer; // raw option bytes, padded to 4
  protocol?: number;
  fragmentOffset?: number;
}

/** An IPv6 extension header: Hop-by-Hop (0), Routing (43), Fragment (44), AH (51) or Destination Options (60). */
export interface Ipv6Extension {
  type: 0 | 43 | 44 | 51 | 60;
  /** Fragment: the offset in 8-octet units (0 = the first fragment). */
  fragmentOffset?: number;
}

export interface Ipv6Spec extends L4Spec {
  src: string;
  dst: string;
  hopLimit?: number;
  nextHeader?: number;
  /** Extension headers, in order, between the fixed header and the upper layer. */
  extensions?: Ipv6Extension[];
}

/** One extension header whose Next Header field is `next`: 8 bytes (16 for AH), padded with PadN. */
function extensionHeader(ext: Ipv6Extension, next: number): Buffer {
  if (ext.type === 44) {
    const h = Buffer.alloc(8);
    h[0] = next;
    h.writeUInt16BE(((ext.fragmentOffset ?? 0) << 3) | 1, 2); // more fragments follow
    h.writeUInt32BE(0x5851, 4);
    return h;
  }
  if (ext.type === 51) {
    const h = Buffer.alloc(16);
    h[0] = next;
    h[1] = 16 / 4 - 2; // AH length: 4-octet units minus 2
    return h;
  }
  const h = Buffer.alloc(8);
  h[0] = next;
  if (ext.type !== 43) {
    h[2] = 1; // PadN option filling the header
    h[3] = 4;
  }
  return h;
}

function payloadOf(spec: L4Spec): Buffer {
  if (spec.payload === undefined) return Buffer.alloc(0);
  return typeof spec.payload === 'number' ? Buffer.alloc(spec.payload) : spec.payload;
}

function l4(spec: L4Spec): { proto: number; bytes: Buffer } {
  const payload = payloadOf(spec);
  if (spec.udp) {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(spec.udp.sport, 0);
    h.writeUInt16BE(spec.udp.dport, 2);
    h.writeUInt16BE(8 + payload.length, 4);
    return { proto: 17, bytes: Buffer.concat([h, payload]) };
  }
  if (spec.tcp) {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(spec.tcp.sport, 0);
    h.writeUInt16BE(spec.tcp.dport, 2);
    h[12] = 5 << 4;
    h[13] = spec.tcp.flags ?? 0x02;
    h.writeUInt16BE(65535, 14);
    return { proto: 6, bytes: Buffer.concat([h, payload]) };
  }
  if (spec.icmp) {
    const h = Buffer.alloc(8);
    h[0] = spec.icmp.type;
    h[1] = spec.icmp.code;
    const body = Buffer.concat([h, payload]);
    body.writeUInt16BE(internetChecksum(body), 2);
    return { proto: 1, bytes: body };
  }
  return { proto: 253, bytes: payload };
}

export function buildFrame(spec: FrameSpec): Buffer {
  const parts: Buffer[] = [];
  const eth = Buffer.alloc(12);
  macBytes(spec.dst).copy(eth, 0);
  macBytes(spec.src ?? '02:00:00:00:00:fe').copy(eth, 6);
  parts.push(eth);
  let etherType: number;
  let body: Buffer;
  if (spec.ipv4) {
    const s = spec.ipv4;
    const { proto, bytes } = l4(s);
    const options = s.options ?? Buffer.alloc(0);
    const hdr = Buffer.alloc(20 + options.length);
    hdr[0] = 0x40 | ((20 + options.length) / 4);
    hdr.writeUInt16BE(hdr.length + bytes.length, 2);
    hdr.writeUInt16BE(0x1234, 4);
    hdr.writeUInt16BE(s.fragmentOffset ?? 0, 6);
    hdr[8] = s.ttl ?? 64;
    hdr[9] = s.protocol ?? proto;
    ipv4Bytes(s.src).copy(hdr, 12);
    ipv4Bytes(s.dst).copy(hdr, 16);
    options.copy(hdr, 20);
    hdr.writeUInt16BE(internetChecksum(hdr), 10);
    etherType = 0x0800;
    body = Buffer.concat([hdr, bytes]);
  } else if (spec.ipv6) {
    const s = spec.ipv6;
    const { proto, bytes: upper } = l4(s);
    const finalHeader = s.nextHeader ?? (proto === 1 ? 58 : proto);
    const extensions = s.extensions ?? [];
    const chain = extensions.map((ext, i) =>
      extensionHeader(ext, i + 1 < extensions.length ? extensions[i + 1].type : finalHeader),
    );
    const bytes = Buffer.concat([...chain, upper]);
    const hdr = Buffer.alloc(40);
    hdr.writeUInt32BE(0x60000000, 0);
    hdr.writeUInt16BE(bytes.length, 4);
    hdr[6] = extensions.length ? extensions[0].type : finalHeader;
    hdr[7] = s.hopLimit ?? 64;
    ipv6Bytes(s.src).copy(hdr, 8);
    ipv6Bytes(s.dst).copy(hdr, 24);
    etherType = 0x86dd;
    body = Buffer.concat([hdr, bytes]);
  } else if (spec.arp) {
    const a = Buffer.alloc(28);
    a.writeUInt16BE(1, 0);
    a.writeUInt16BE(0x0800, 2);
    a[4] = 6;
    a[5] = 4;
    a.writeUInt16BE(spec.arp.op, 6);
    macBytes(spec.arp.senderMac).copy(a, 8);
    ipv4Bytes(spec.arp.senderIp).copy(a, 14);
    ipv4Bytes(spec.arp.targetIp).copy(a, 24);
    etherType = 0x0806;
    body = a;
  } else if (spec.raw) {
    etherType = spec.raw.etherType;
    body = spec.raw.payload;
  } else {
    throw new Error('frame needs ipv4, ipv6, arp or raw');
  }
  if (spec.vlan) {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(0x8100, 0);
    tag.writeUInt16BE(spec.vlan, 2);
    parts.push(tag);
  }
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etherType, 0);
  parts.push(type, body);
  const frame = Buffer.concat(parts);
  return frame.length < 60 ? Buffer.concat([frame, Buffer.alloc(60 - frame.length)]) : frame;
}

export interface ParsedFrame {
  dst: Mac;
  src: Mac;
  vlan: number;
  etherType: number;
  ipv4?: { src: string; dst: string; ttl: number; headerLength: number; checksumValid: boolean };
  ipv6?: { src: string; dst: string; hopLimit: number };
}

/** Reads a frame back for assertions. */
export function parseFrame(frame: Buffer): ParsedFrame {
  let offset = 12;
  let vlan = 0;
  let etherType = frame.readUInt16BE(offset);
  if (etherType === 0x8100 || etherType === 0x88a8) {
    vlan = frame.readUInt16BE(offset + 2) & 0x0fff;
    offset += 4;
    etherType = frame.readUInt16BE(offset);
  }
  offset += 2;
  const out: ParsedFrame = {
    dst: macString(frame.subarray(0, 6)),
    src: macString(frame.subarray(6, 12)),
    vlan,
    etherType,
  };
  if (etherType === 0x0800) {
    const ihl = (frame[offset] & 0x0f) * 4;
    const hdr = frame.subarray(offset, offset + ihl);
    out.ipv4 = {
      src: Array.from(hdr.subarray(12, 16)).join('.'),
      dst: Array.from(hdr.subarray(16, 20)).join('.'),
      ttl: hdr[8],
      headerLength: ihl,
      checksumValid: internetChecksum(hdr) === 0,
    };
  } else if (etherType === 0x86dd) {
    const hdr = frame.subarray(offset, offset + 40);
    const words = (b: Buffer): string =>
      Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
    out.ipv6 = { src: words(hdr.subarray(8, 24)), dst: words(hdr.subarray(24, 40)), hopLimit: hdr[7] };
  }
  return out;
}
