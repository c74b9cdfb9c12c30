// The data plane update protocol: the messages a virtual router's client sends the
// host's data plane manager inside the secure channel's records, and the host's Acks.
// Paper IV-B: the client transmits its forwarding table and packet filter changes to
// Dom0 via the secure communication module; this is the format of those changes.
// Over 600 lines: each message's encoder and decoder sit side by side, so that the two
// directions of one wire format are read together; splitting it is left as follow-up work.
//
// Binary, big-endian, one message per record payload: byte 0 is the message type.
// Routes and neighbours are fixed-size entries so that a full table (1,000,000 IPv4
// routes = 12 MB) encodes and decodes with plain byte copies, and a decoder can bound
// every count by the bytes left before it allocates anything. docs/manager.md has the
// byte layouts.
// Size: every message's encoder and decoder side by side, so that the byte layouts of
// docs/manager.md are read in one place; a split by message is the layout issue's to decide.
import { ValidationError, XnetmonError } from '../errors/index.js';
import {
  addressBytesLength,
  formatAddress,
  formatPrefixBytes,
  macFromBytes,
  maxPrefixLength,
  parseAddress,
  parsePrefixText,
  writeMac,
  type Family,
} from '../net/index.js';

export const PROTOCOL_VERSION = 1;
/** Largest record payload of the secure channel (1 MiB): the default split size of route batches. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export const MessageType = {
  hello: 1,
  routeBatch: 2,
  neighbourBatch: 3,
  filterReplace: 4,
  endOfSync: 5,
  ack: 6,
} as const;

/**
 * unicast: forwarded by the host to `gateway` (or, without a gateway, a connected route
 * that the host hands to the router); local: an address of the router itself; blackhole:
 * dropped; via-vm: the router wants to forward it itself (paper II: a route to the VM).
 */
export type RouteKind = 'unicast' | 'local' | 'blackhole' | 'via-vm';
export const ROUTE_KINDS: readonly RouteKind[] = ['unicast', 'local', 'blackhole', 'via-vm'];
/** Route entry kind byte: the kind's index in ROUTE_KINDS, plus this bit when a gateway follows. */
export const KIND_GATEWAY_BIT = 0x80;
/** Interface reference of an entry that has no out-interface. */
export const NO_INTERFACE = 0xffff;
/** Interface names are at most IFNAMSIZ - 1 bytes. */
const MAX_INTERFACE_NAME_BYTES = 15;
const MAX_CLIENT_NAME_BYTES = 64;
const MAX_ERROR_CODE_BYTES = 32;
const MAX_ERROR_MESSAGE_BYTES = 1024;
/** An interface table lists at most this many interfaces (its references are 16-bit). */
const MAX_INTERFACES = 0xfffe;

export const ENTRY_BYTES = {
  route4: 4 + 1 + 1 + 4 + 2,
  route6: 16 + 1 + 1 + 16 + 2,
  prefix4: 4 + 1,
  prefix6: 16 + 1,
  neighbour4: 4 + 6 + 2,
  neighbour6: 16 + 6 + 2,
  neighbourKey4: 4 + 2,
  neighbourKey6: 16 + 2,
  filterRule: 4 + 1 + 1 + 1 + 1 + 17 + 17 + 8,
} as const;

/** A decode failure: which message and field, at which byte offset, and why. */
export class ProtocolError extends XnetmonError {
  readonly field: string;
  readonly offset: number;

  constructor(field: string, offset: number, problem: string) {
    super('ERR_PROTOCOL', `${field} at byte ${offset}: ${problem}`);
    this.field = field;
    this.offset = offset;
  }
}

// ---- message types ------------------------------------------------------------------

/** An interface of the virtual router, as the router sees it. */
export interface RouterInterface {
  /** The router's ifindex. */
  readonly index: number;
  readonly name: string;
  /** The router's MAC on that interface ("02:00:..."), null when it has none. */
  readonly mac: string | null;
}

/** Routes of one family as columns: entry i is at addrs[i * 4 or 16], lengths[i], ... */
export interface RouteColumns {
  readonly family: Family;
  readonly count: number;
  /** Network-order addresses, 4 or 16 bytes each. */
  readonly addrs: Uint8Array;
  readonly lengths: Uint8Array;
  /** Index in ROUTE_KINDS, | KIND_GATEWAY_BIT when the entry has a gateway. */
  readonly kinds: Uint8Array;
  /** Gateways, 4 or 16 bytes each (zero when the entry has none). */
  readonly gateways: Uint8Array;
  /** Index in the message's interface table, or NO_INTERFACE. */
  readonly interfaces: Uint16Array;
}

export interface PrefixColumns {
  readonly family: Family;
  readonly count: number;
  readonly addrs: Uint8Array;
  readonly lengths: Uint8Array;
}

export interface NeighbourColumns {
  readonly family: Family;
  readonly count: number;
  readonly addrs: Uint8Array;
  /** 6 bytes each. */
  readonly macs: Uint8Array;
  readonly interfaces: Uint16Array;
}

export interface NeighbourKeyColumns {
  readonly family: Family;
  readonly count: number;
  readonly addrs: Uint8Array;
  readonly interfaces: Uint16Array;
}

export interface Hello {
  readonly type: 'hello';
  readonly version: number;
  readonly clientName: string;
}

/** Route changes without a sequence number: what encodeRouteBatches splits. */
export interface RouteChanges {
  /** Interfaces that entries reference by their position in this list. */
  readonly interfaces: readonly RouterInterface[];
  readonly adds4: RouteColumns;
  readonly adds6: RouteColumns;
  readonly deletes4: PrefixColumns;
  readonly deletes6: PrefixColumns;
}

export interface RouteBatch extends RouteChanges {
  readonly type: 'route-batch';
  readonly sequence: number;
}

export interface NeighbourBatch {
  readonly type: 'neighbour-batch';
  readonly sequence: number;
  readonly interfaces: readonly RouterInterface[];
  readonly adds4: NeighbourColumns;
  readonly adds6: NeighbourColumns;
  readonly deletes4: NeighbourKeyColumns;
  readonly deletes6: NeighbourKeyColumns;
}

/** One rule of the replicated packet filter (docs/manager.md: the nftables subset). */
export interface FilterRule {
  /** The router's nftables rule handle, for error messages (0 = made up by the client). */
  readonly handle: number;
  readonly family: Family;
  /** IP protocol number, 0 = any. */
  readonly proto: number;
  /** Source and destination prefixes, null = any. */
  readonly src: string | null;
  readonly dst: string | null;
  /** Inclusive port ranges, null = any. */
  readonly sport: readonly [number, number] | null;
  readonly dport: readonly [number, number] | null;
  readonly action: 'accept' | 'drop';
}

export interface FilterReplace {
  readonly type: 'filter-replace';
  readonly sequence: number;
  readonly rules: readonly FilterRule[];
}

export interface EndOfSync {
  readonly type: 'end-of-sync';
  readonly sequence: number;
}

/** Host -> client: the outcome of the message with this sequence (Hello is acked as 0). */
export interface Ack {
  readonly type: 'ack';
  readonly sequence: number;
  readonly ok: boolean;
  /** A stable code ("ERR_INVALID", ...), empty when ok. */
  readonly errorCode: string;
  readonly errorMessage: string;
}

export type UpdateMessage = Hello | RouteBatch | NeighbourBatch | FilterReplace | EndOfSync | Ack;
type Fields<T extends { type: string }> = Omit<T, 'type'>;

// ---- writer ---------------------------------------------------------------------------

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  readonly buf: Buffer;
  offset = 0;

  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }

  u8(v: number): void {
    this.buf[this.offset++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.offset);
    this.offset += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.offset);
    this.offset += 4;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.offset);
    this.offset += b.length;
  }

  done(): Buffer {
    if (this.offset !== this.buf.length)
      throw new Error(`encoder size mismatch: wrote ${this.offset} of ${this.buf.length}`);
    return this.buf;
  }
}

function checkSequence(sequence: number, path: string): void {
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > 0xffffffff)
    throw new ValidationError(path, `sequence ${sequence} must be an integer 0..2^32-1`);
}

function encodedText(text: string, max: number, path: string): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length > max) throw new ValidationError(path, `is ${bytes.length} bytes; at most ${max}`);
  return bytes;
}

function checkInterfaceName(name: string, path: string): Uint8Array {
  const bytes = encodedText(name, MAX_INTERFACE_NAME_BYTES, path);
  if (bytes.length === 0 || /[\s/:\0]/.test(name))
    throw new ValidationError(path, `"${name}" is not an interface name`);
  return bytes;
}

function interfaceTableBytes(interfaces: readonly RouterInterface[]): number {
  let size = 2;
  for (const iface of interfaces) size += 4 + 1 + 6 + 1 + utf8.encode(iface.name).length;
  return size;
}

function writeInterfaces(w: Writer, interfaces: readonly RouterInterface[], path: string): void {
  if (interfaces.length > MAX_INTERFACES)
    throw new ValidationError(path, `${interfaces.length} interfaces; at most ${MAX_INTERFACES}`);
  w.u16(interfaces.length);
  interfaces.forEach((iface, i) => {
    if (!Number.isInteger(iface.index) || iface.index < 0 || iface.index > 0xffffffff)
      throw new ValidationError(`${path}[${i}].index`, `${iface.index} is not an interface index`);
    const name = checkInterfaceName(iface.name, `${path}[${i}].name`);
    w.u32(iface.index);
    w.u8(iface.mac === null ? 0 : 1);
    const mac = Buffer.alloc(6);
    if (iface.mac !== null) writeMac(iface.mac, mac, 0, `${path}[${i}].mac`);
    w.bytes(mac);
    w.u8(name.length);
    w.bytes(name);
  });
}

function checkInterfaceRefs(refs: Uint16Array, count: number, tableSize: number, path: string): void {
  for (let i = 0; i < count; i++) {
    const ref = refs[i]!;
    if (ref !== NO_INTERFACE && ref >= tableSize)
      throw new ValidationError(`${path}[${i}].interface`, `refers to interface ${ref}; the table has ${tableSize}`);
  }
}

// ---- reader ----------------------------------------------------------------------------

class Reader {
  offset = 0;

  constructor(
    readonly buf: Uint8Array,
    readonly message: string,
  ) {}

  fail(field: string, problem: string, offset = this.offset): never {
    throw new ProtocolError(`${this.message}.${field}`, offset, problem);
  }

  remaining(): number {
    return this.buf.length - this.offset;
  }

  need(n: number, field: string): void {
    if (this.remaining() < n)
      this.fail(field, `truncated: needs ${n} byte${n === 1 ? '' : 's'}, ${this.remaining()} left`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.offset++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = (this.buf[this.offset]! << 8) | this.buf[this.offset + 1]!;
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const o = this.offset;
    this.offset += 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  text(n: number, field: string): string {
    const start = this.offset;
    const bytes = this.bytes(n, field);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return this.fail(field, 'is not valid UTF-8', start);
    }
  }

  /** A u32 entry count, refused when the entries cannot fit in the bytes that are left. */
  count(field: string, entryBytes: number, minTrailingBytes: number): number {
    const at = this.offset;
    const n = this.u32(field);
    const room = Math.floor(Math.max(0, this.remaining() - minTrailingBytes) / entryBytes);
    if (n > room)
      this.fail(field, `${n} entries of ${entryBytes} bytes cannot fit in the ${this.remaining()} bytes left`, at);
    return n;
  }

  end(): void {
    if (this.offset !== this.buf.length) this.fail('(end)', `${this.buf.length - this.offset} trailing bytes`);
  }
}

function readInterfaces(r: Reader): RouterInterface[] {
  const at = r.offset;
  const count = r.u16('interfaces.count');
  // The smallest interface entry is 13 bytes: never allocate more than the bytes allow.
  if (count > MAX_INTERFACES || count * 13 > r.remaining())
    r.fail('interfaces.count', `${count} interfaces cannot fit in the ${r.remaining()} bytes left`, at);
  const out: RouterInterface[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const field = `interfaces[${i}]`;
    const indexAt = r.offset;
    const index = r.u32(`${field}.index`);
    if (seen.has(index)) r.fail(`${field}.index`, `interface index ${index} is listed twice`, indexAt);
    seen.add(index);
    const flagsAt = r.offset;
    const hasMac = r.u8(`${field}.flags`);
    if (hasMac > 1) r.fail(`${field}.flags`, `unknown flags 0x${hasMac.toString(16)}`, flagsAt);
    const macAt = r.offset;
    const macBytes = r.bytes(6, `${field}.mac`);
    if (!hasMac && macBytes.some((b) => b !== 0))
      r.fail(`${field}.mac`, 'must be zero when the interface has no MAC', macAt);
    const lengthAt = r.offset;
    const nameLength = r.u8(`${field}.nameLength`);
    if (nameLength === 0 || nameLength > MAX_INTERFACE_NAME_BYTES)
      r.fail(`${field}.nameLength`, `${nameLength} must be 1..${MAX_INTERFACE_NAME_BYTES}`, lengthAt);
    const nameAt = r.offset;
    const name = r.text(nameLength, `${field}.name`);
    if (/[\s/:\0]/.test(name)) r.fail(`${field}.name`, `${JSON.stringify(name)} is not an interface name`, nameAt);
    out.push({ index, name, mac: hasMac ? macFromBytes(macBytes) : null });
  }
  return out;
}

function readMessageType(buf: Uint8Array, expected: number, name: string): Reader {
  const r = new Reader(buf, name);
  const type = r.u8('type');
  if (type !== expected) r.fail('type', `is ${type}, expected ${expected} (${name})`, 0);
  return r;
}

/**
 * Runs a decoder so that it can only throw ProtocolError: a bug that throws anything else
 * is reported as one too (field "(decoder)"), never as a crash of the session.
 */
function guarded<T>(message: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError(
      `${message}.(decoder)`,
      0,
      `internal decoder error: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

// ---- Hello ----------------------------------------------------------------------------

export function encodeHello(hello: Fields<Hello>): Buffer {
  if (!Number.isInteger(hello.version) || hello.version < 0 || hello.version > 0xffff)
    throw new ValidationError('hello.version', `${hello.version} must be 0..65535`);
  const name = encodedText(hello.clientName, MAX_CLIENT_NAME_BYTES, 'hello.clientName');
  const w = new Writer(1 + 2 + 1 + name.length);
  w.u8(MessageType.hello);
  w.u16(hello.version);
  w.u8(name.length);
  w.bytes(name);
  return w.done();
}

export function decodeHello(buf: Uint8Array): Hello {
  return guarded('hello', () => {
    const r = readMessageType(buf, MessageType.hello, 'hello');
    const version = r.u16('version');
    const lengthAt = r.offset;
    const length = r.u8('clientNameLength');
    if (length > MAX_CLIENT_NAME_BYTES)
      r.fail('clientNameLength', `${length} is more than ${MAX_CLIENT_NAME_BYTES}`, lengthAt);
    const clientName = r.text(length, 'clientName');
    r.end();
    return { type: 'hello', version, clientName };
  });
}

// ---- RouteBatch -------------------------------------------------------------------------

function routeEntryBytes(family: Family): number {
  return family === 4 ? ENTRY_BYTES.route4 : ENTRY_BYTES.route6;
}

function prefixEntryBytes(family: Family): number {
  return family === 4 ? ENTRY_BYTES.prefix4 : ENTRY_BYTES.prefix6;
}

export function emptyRouteColumns(family: Family): RouteColumns {
  return {
    family,
    count: 0,
    addrs: new Uint8Array(0),
    lengths: new Uint8Array(0),
    kinds: new Uint8Array(0),
    gateways: new Uint8Array(0),
    interfaces: new Uint16Array(0),
  };
}

export function emptyPrefixColumns(family: Family): PrefixColumns {
  return { family, count: 0, addrs: new Uint8Array(0), lengths: new Uint8Array(0) };
}

function allocRouteColumns(family: Family, count: number): RouteColumns {
  const size = addressBytesLength(family);
  return {
    family,
    count,
    addrs: new Uint8Array(count * size),
    lengths: new Uint8Array(count),
    kinds: new Uint8Array(count),
    gateways: new Uint8Array(count * size),
    interfaces: new Uint16Array(count),
  };
}

function allocPrefixColumns(family: Family, count: number): PrefixColumns {
  return { family, count, addrs: new Uint8Array(count * addressBytesLength(family)), lengths: new Uint8Array(count) };
}

function checkRouteColumns(c: RouteColumns, family: Family, tableSize: number, path: string): void {
  const size = addressBytesLength(family);
  if (c.family !== family) throw new ValidationError(path, `holds IPv${c.family} routes, expected IPv${family}`);
  if (
    !Number.isInteger(c.count) ||
    c.count < 0 ||
    c.addrs.length < c.count * size ||
    c.lengths.length < c.count ||
    c.kinds.length < c.count ||
    c.gateways.length < c.count * size ||
    c.interfaces.length < c.count
  )
    throw new ValidationError(path, `columns are shorter than count ${c.count}`);
  const max = maxPrefixLength(family);
  for (let i = 0; i < c.count; i++) {
    if (c.lengths[i]! > max) throw new ValidationError(`${path}[${i}].length`, `${c.lengths[i]} must be 0..${max}`);
    if ((c.kinds[i]! & ~KIND_GATEWAY_BIT) >= ROUTE_KINDS.length)
      throw new ValidationError(`${path}[${i}].kind`, `unknown kind byte ${c.kinds[i]}`);
  }
  checkInterfaceRefs(c.interfaces, c.count, tableSize, path);
}

function checkPrefixColumns(c: PrefixColumns, family: Family, path: string): void {
  if (c.family !== family) throw new ValidationError(path, `holds IPv${c.family} prefixes, expected IPv${family}`);
  if (
    !Number.isInteger(c.count) ||
    c.count < 0 ||
    c.addrs.length < c.count * addressBytesLength(family) ||
    c.lengths.length < c.count
  ) {
    throw new ValidationError(path, `columns are shorter than count ${c.count}`);
  }
  const max = maxPrefixLength(family);
  for (let i = 0; i < c.count; i++)
    if (c.lengths[i]! > max) throw new ValidationError(`${path}[${i}].length`, `${c.lengths[i]} must be 0..${max}`);
}

interface Range {
  start: number;
  end: number;
}

/** Byte size of a route batch holding these entry counts, with this interface table. */
function routeBatchBytes(
  interfacesBytes: number,
  adds4: number,
  adds6: number,
  deletes4: number,
  deletes6: number,
): number {
  return (
    1 +
    4 +
    interfacesBytes +
    4 * 4 +
    adds4 * ENTRY_BYTES.route4 +
    adds6 * ENTRY_BYTES.route6 +
    deletes4 * ENTRY_BYTES.prefix4 +
    deletes6 * ENTRY_BYTES.prefix6
  );
}

function writeRouteEntries(w: Writer, c: RouteColumns, range: Range): void {
  const size = addressBytesLength(c.family);
  w.u32(range.end - range.start);
  const buf = w.buf;
  let o = w.offset;
  const { addrs, lengths, kinds, gateways, interfaces } = c;
  for (let i = range.start; i < range.end; i++) {
    const a = i * size;
    for (let k = 0; k < size; k++) buf[o++] = addrs[a + k]!;
    buf[o++] = lengths[i]!;
    const kind = kinds[i]!;
    buf[o++] = kind;
    if (kind & KIND_GATEWAY_BIT) for (let k = 0; k < size; k++) buf[o++] = gateways[a + k]!;
    else for (let k = 0; k < size; k++) buf[o++] = 0;
    const ref = interfaces[i]!;
    buf[o++] = ref >> 8;
    buf[o++] = ref & 0xff;
  }
  w.offset = o;
}

function writePrefixEntries(w: Writer, c: PrefixColumns, range: Range): void {
  const size = addressBytesLength(c.family);
  w.u32(range.end - range.start);
  const buf = w.buf;
  let o = w.offset;
  for (let i = range.start; i < range.end; i++) {
    const a = i * size;
    for (let k = 0; k < size; k++) buf[o++] = c.addrs[a + k]!;
    buf[o++] = c.lengths[i]!;
  }
  w.offset = o;
}

function encodeRouteBatchRanges(
  sequence: number,
  changes: RouteChanges,
  interfacesBytes: number,
  ranges: { adds4: Range; adds6: Range; deletes4: Range; deletes6: Range },
): Buffer {
  const size = routeBatchBytes(
    interfacesBytes,
    ranges.adds4.end - ranges.adds4.start,
    ranges.adds6.end - ranges.adds6.start,
    ranges.deletes4.end - ranges.deletes4.start,
    ranges.deletes6.end - ranges.deletes6.start,
  );
  const w = new Writer(size);
  w.u8(MessageType.routeBatch);
  w.u32(sequence);
  writeInterfaces(w, changes.interfaces, 'routeBatch.interfaces');
  writeRouteEntries(w, changes.adds4, ranges.adds4);
  writeRouteEntries(w, changes.adds6, ranges.adds6);
  writePrefixEntries(w, changes.deletes4, ranges.deletes4);
  writePrefixEntries(w, changes.deletes6, ranges.deletes6);
  return w.done();
}

function checkRouteChanges(changes: RouteChanges): void {
  checkRouteColumns(changes.adds4, 4, changes.interfaces.length, 'routeBatch.adds4');
  checkRouteColumns(changes.adds6, 6, changes.interfaces.length, 'routeBatch.adds6');
  checkPrefixColumns(changes.deletes4, 4, 'routeBatch.deletes4');
  checkPrefixColumns(changes.deletes6, 6, 'routeBatch.deletes6');
}

export function encodeRouteBatch(batch: Fields<RouteBatch>): Buffer {
  checkSequence(batch.sequence, 'routeBatch.sequence');
  checkRouteChanges(batch);
  const all = (n: number): Range => ({ start: 0, end: n });
  return encodeRouteBatchRanges(batch.sequence, batch, interfaceTableBytes(batch.interfaces), {
    adds4: all(batch.adds4.count),
    adds6: all(batch.adds6.count),
    deletes4: all(batch.deletes4.count),
    deletes6: all(batch.deletes6.count),
  });
}

export interface EncodedBatch {
  readonly sequence: number;
  readonly payload: Buffer;
  /** Entries (adds + deletes) in this message. */
  readonly entries: number;
}

/**
 * Splits route changes into RouteBatch messages of at most `maxBytes` each, numbered from
 * `firstSequence`: adds first (IPv4, IPv6), then deletes, so that a replacement never
 * leaves a gap. Nothing is yielded for empty changes. Each message carries the whole
 * interface table, so that each one decodes on its own.
 */
export function* encodeRouteBatches(
  changes: RouteChanges,
  options: { firstSequence: number; maxBytes?: number },
): Generator<EncodedBatch, void, undefined> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  checkSequence(options.firstSequence, 'firstSequence');
  checkRouteChanges(changes);
  const interfacesBytes = interfaceTableBytes(changes.interfaces);
  const overhead = routeBatchBytes(interfacesBytes, 0, 0, 0, 0);
  if (maxBytes < overhead + ENTRY_BYTES.route6)
    throw new ValidationError('maxBytes', `${maxBytes} cannot hold one route after the ${overhead}-byte header`);
  // One cursor walks the four lists in order; each message takes what fits.
  const lists = [
    { count: changes.adds4.count, bytes: ENTRY_BYTES.route4 },
    { count: changes.adds6.count, bytes: ENTRY_BYTES.route6 },
    { count: changes.deletes4.count, bytes: ENTRY_BYTES.prefix4 },
    { count: changes.deletes6.count, bytes: ENTRY_BYTES.prefix6 },
  ];
  const position = [0, 0, 0, 0];
  let sequence = options.firstSequence;
  let list = 0;
  while (list < lists.length) {
    let room = maxBytes - overhead;
    const ranges: Range[] = position.map((p) => ({ start: p, end: p }));
    let entries = 0;
    for (let l = list; l < lists.length && room >= lists[l]!.bytes; l++) {
      const take = Math.min(lists[l]!.count - position[l]!, Math.floor(room / lists[l]!.bytes));
      ranges[l]!.end = position[l]! + take;
      position[l]! += take;
      room -= take * lists[l]!.bytes;
      entries += take;
      // Strictly in order: nothing of a later list before this one is done.
      if (position[l]! < lists[l]!.count) break;
    }
    while (list < lists.length && position[list] === lists[list]!.count) list++;
    if (entries === 0) break;
    yield {
      sequence,
      entries,
      payload: encodeRouteBatchRanges(sequence, changes, interfacesBytes, {
        adds4: ranges[0]!,
        adds6: ranges[1]!,
        deletes4: ranges[2]!,
        deletes6: ranges[3]!,
      }),
    };
    sequence = (sequence + 1) >>> 0;
  }
}

function readRouteEntries(r: Reader, family: Family, field: string, tableSize: number, trailing: number): RouteColumns {
  const entryBytes = routeEntryBytes(family);
  const count = r.count(`${field}.count`, entryBytes, trailing);
  const c = allocRouteColumns(family, count);
  const size = addressBytesLength(family);
  const max = maxPrefixLength(family);
  const buf = r.buf;
  let o = r.offset;
  const { addrs, lengths, kinds, gateways, interfaces } = c;
  for (let i = 0; i < count; i++) {
    const entryAt = o;
    const a = i * size;
    for (let k = 0; k < size; k++) addrs[a + k] = buf[o++]!;
    const length = buf[o++]!;
    if (length > max) r.fail(`${field}[${i}].length`, `${length} must be 0..${max}`, entryAt + size);
    lengths[i] = length;
    const kind = buf[o++]!;
    if ((kind & ~KIND_GATEWAY_BIT) >= ROUTE_KINDS.length)
      r.fail(`${field}[${i}].kind`, `unknown kind byte 0x${kind.toString(16)}`, entryAt + size + 1);
    kinds[i] = kind;
    if (kind & KIND_GATEWAY_BIT) {
      for (let k = 0; k < size; k++) gateways[a + k] = buf[o++]!;
    } else {
      for (let k = 0; k < size; k++)
        if (buf[o++] !== 0)
          r.fail(`${field}[${i}].gateway`, 'must be zero when the kind has no gateway bit', entryAt + size + 2);
    }
    const ref = (buf[o]! << 8) | buf[o + 1]!;
    if (ref !== NO_INTERFACE && ref >= tableSize)
      r.fail(`${field}[${i}].interface`, `refers to interface ${ref}; the table has ${tableSize}`, o);
    o += 2;
    interfaces[i] = ref;
  }
  r.offset = o;
  return c;
}

function readPrefixEntries(r: Reader, family: Family, field: string, trailing: number): PrefixColumns {
  const count = r.count(`${field}.count`, prefixEntryBytes(family), trailing);
  const c = allocPrefixColumns(family, count);
  const size = addressBytesLength(family);
  const max = maxPrefixLength(family);
  const buf = r.buf;
  let o = r.offset;
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < size; k++) c.addrs[i * size + k] = buf[o++]!;
    const length = buf[o++]!;
    if (length > max) r.fail(`${field}[${i}].length`, `${length} must be 0..${max}`, o - 1);
    c.lengths[i] = length;
  }
  r.offset = o;
  return c;
}

export function decodeRouteBatch(buf: Uint8Array): RouteBatch {
  return guarded('routeBatch', () => {
    const r = readMessageType(buf, MessageType.routeBatch, 'routeBatch');
    const sequence = r.u32('sequence');
    const interfaces = readInterfaces(r);
    // Each later list needs at least its own 4-byte count: that bounds the earlier ones.
    const adds4 = readRouteEntries(r, 4, 'adds4', interfaces.length, 12);
    const adds6 = readRouteEntries(r, 6, 'adds6', interfaces.length, 8);
    const deletes4 = readPrefixEntries(r, 4, 'deletes4', 4);
    const deletes6 = readPrefixEntries(r, 6, 'deletes6', 0);
    r.end();
    return { type: 'route-batch', sequence, interfaces, adds4, adds6, deletes4, deletes6 };
  });
}

// ---- routes as objects (tests, small batches, the client) -------------------------------

/** One route in readable form. */
export interface WireRoute {
  readonly prefix: string;
  readonly kind: RouteKind;
  readonly gateway: string | null;
  /** The out-interface as the router sees it, null for routes that have none. */
  readonly interface: RouterInterface | null;
}

/** Builds an interface table from the interfaces that entries use (one per index). */
class InterfaceTable {
  readonly list: RouterInterface[] = [];
  private readonly byIndex = new Map<number, number>();

  ref(iface: RouterInterface | null, path: string): number {
    if (iface === null) return NO_INTERFACE;
    const known = this.byIndex.get(iface.index);
    if (known !== undefined) {
      const other = this.list[known]!;
      if (other.name !== iface.name || other.mac !== iface.mac)
        throw new ValidationError(path, `interface index ${iface.index} is both ${other.name} and ${iface.name}`);
      return known;
    }
    if (this.list.length >= MAX_INTERFACES) throw new ValidationError(path, `more than ${MAX_INTERFACES} interfaces`);
    this.byIndex.set(iface.index, this.list.length);
    this.list.push(iface);
    return this.list.length - 1;
  }
}

function routeColumnsOf(
  family: Family,
  routes: readonly { route: WireRoute; path: string }[],
  table: InterfaceTable,
): RouteColumns {
  const c = allocRouteColumns(family, routes.length);
  const size = addressBytesLength(family);
  routes.forEach(({ route, path }, i) => {
    const p = parsePrefixText(route.prefix, `${path}.prefix`);
    c.addrs.set(p.addr, i * size);
    c.lengths[i] = p.length;
    const kind = ROUTE_KINDS.indexOf(route.kind);
    if (kind < 0) throw new ValidationError(`${path}.kind`, `unknown kind ${String(route.kind)}`);
    c.kinds[i] = kind;
    if (route.gateway !== null) {
      const gw = parseAddress(route.gateway, `${path}.gateway`);
      if (gw.family !== family)
        throw new ValidationError(`${path}.gateway`, `${route.gateway} is not IPv${family} like the prefix`);
      c.gateways.set(gw.bytes, i * size);
      c.kinds[i] = kind | KIND_GATEWAY_BIT;
    }
    c.interfaces[i] = table.ref(route.interface, `${path}.interface`);
  });
  return c;
}

function prefixColumnsOf(family: Family, prefixes: readonly { addr: Buffer; length: number }[]): PrefixColumns {
  const c = allocPrefixColumns(family, prefixes.length);
  prefixes.forEach((p, i) => {
    c.addrs.set(p.addr, i * addressBytesLength(family));
    c.lengths[i] = p.length;
  });
  return c;
}

/** Route changes from readable routes and deleted prefixes; throws ValidationError naming the entry. */
export function routeChangesFromLists(adds: readonly WireRoute[], deletes: readonly string[]): RouteChanges {
  const table = new InterfaceTable();
  const byFamily = (family: Family) =>
    adds
      .map((route, i) => ({ route, path: `adds[${i}]` }))
      .filter(({ route, path }) => parsePrefixText(route.prefix, `${path}.prefix`).family === family);
  const deleted = deletes.map((text, i) => parsePrefixText(text, `deletes[${i}]`));
  return {
    adds4: routeColumnsOf(4, byFamily(4), table),
    adds6: routeColumnsOf(6, byFamily(6), table),
    deletes4: prefixColumnsOf(
      4,
      deleted.filter((p) => p.family === 4),
    ),
    deletes6: prefixColumnsOf(
      6,
      deleted.filter((p) => p.family === 6),
    ),
    interfaces: table.list,
  };
}

/** The i-th route of a column set, readable. */
function routeAt(c: RouteColumns, i: number, interfaces: readonly RouterInterface[]): WireRoute {
  const size = addressBytesLength(c.family);
  const kind = c.kinds[i]!;
  const ref = c.interfaces[i]!;
  return {
    prefix: formatPrefixBytes(c.addrs, c.lengths[i]!, i * size, c.family),
    kind: ROUTE_KINDS[kind & ~KIND_GATEWAY_BIT] ?? 'via-vm',
    gateway: kind & KIND_GATEWAY_BIT ? formatAddress(c.gateways, i * size, c.family) : null,
    interface: ref === NO_INTERFACE ? null : (interfaces[ref] ?? null),
  };
}

function prefixAt(c: PrefixColumns, i: number): string {
  return formatPrefixBytes(c.addrs, c.lengths[i]!, i * addressBytesLength(c.family), c.family);
}

/** All adds and deletes of route changes, readable (IPv4 first). */
export function routeChangesToLists(changes: RouteChanges): { adds: WireRoute[]; deletes: string[] } {
  const adds: WireRoute[] = [];
  for (const c of [changes.adds4, changes.adds6])
    for (let i = 0; i < c.count; i++) adds.push(routeAt(c, i, changes.interfaces));
  const deletes: string[] = [];
  for (const c of [changes.deletes4, changes.deletes6]) for (let i = 0; i < c.count; i++) deletes.push(prefixAt(c, i));
  return { adds, deletes };
}

// ---- NeighbourBatch ----------------------------------------------------------------------

/** One neighbour (ARP / NDP entry) in readable form. */
export interface WireNeighbour {
  readonly address: string;
  readonly mac: string;
  readonly interface: RouterInterface;
}

export interface WireNeighbourKey {
  readonly address: string;
  readonly interface: RouterInterface;
}

export function neighbourBatchFromLists(
  sequence: number,
  adds: readonly WireNeighbour[],
  deletes: readonly WireNeighbourKey[],
): Fields<NeighbourBatch> {
  const table = new InterfaceTable();
  const parsedAdds = adds.map((n, i) => ({ n, i, a: parseAddress(n.address, `adds[${i}].address`) }));
  const parsedDeletes = deletes.map((n, i) => ({ n, i, a: parseAddress(n.address, `deletes[${i}].address`) }));
  const addColumns = (family: Family): NeighbourColumns => {
    const list = parsedAdds.filter((x) => x.a.family === family);
    const size = addressBytesLength(family);
    const c = {
      family,
      count: list.length,
      addrs: new Uint8Array(list.length * size),
      macs: new Uint8Array(list.length * 6),
      interfaces: new Uint16Array(list.length),
    };
    list.forEach(({ n, i, a }, k) => {
      c.addrs.set(a.bytes, k * size);
      writeMac(n.mac, c.macs, k * 6, `adds[${i}].mac`);
      c.interfaces[k] = table.ref(n.interface, `adds[${i}].interface`);
    });
    return c;
  };
  const deleteColumns = (family: Family): NeighbourKeyColumns => {
    const list = parsedDeletes.filter((x) => x.a.family === family);
    const size = addressBytesLength(family);
    const c = {
      family,
      count: list.length,
      addrs: new Uint8Array(list.length * size),
      interfaces: new Uint16Array(list.length),
    };
    list.forEach(({ n, i, a }, k) => {
      c.addrs.set(a.bytes, k * size);
      c.interfaces[k] = table.ref(n.interface, `deletes[${i}].interface`);
    });
    return c;
  };
  const adds4 = addColumns(4);
  const adds6 = addColumns(6);
  const deletes4 = deleteColumns(4);
  const deletes6 = deleteColumns(6);
  return { sequence, interfaces: table.list, adds4, adds6, deletes4, deletes6 };
}

export function neighbourBatchToLists(batch: Fields<NeighbourBatch>): {
  adds: WireNeighbour[];
  deletes: WireNeighbourKey[];
} {
  const adds: WireNeighbour[] = [];
  for (const c of [batch.adds4, batch.adds6]) {
    const size = addressBytesLength(c.family);
    for (let i = 0; i < c.count; i++) {
      adds.push({
        address: formatAddress(c.addrs, i * size, c.family),
        mac: macFromBytes(c.macs, i * 6),
        interface: batch.interfaces[c.interfaces[i]!]!,
      });
    }
  }
  const deletes: WireNeighbourKey[] = [];
  for (const c of [batch.deletes4, batch.deletes6]) {
    const size = addressBytesLength(c.family);
    for (let i = 0; i < c.count; i++)
      deletes.push({
        address: formatAddress(c.addrs, i * size, c.family),
        interface: batch.interfaces[c.interfaces[i]!]!,
      });
  }
  return { adds, deletes };
}

export function encodeNeighbourBatch(batch: Fields<NeighbourBatch>): Buffer {
  checkSequence(batch.sequence, 'neighbourBatch.sequence');
  const n = batch.interfaces.length;
  const columns: [NeighbourColumns | NeighbourKeyColumns, Family, string][] = [
    [batch.adds4, 4, 'adds4'],
    [batch.adds6, 6, 'adds6'],
    [batch.deletes4, 4, 'deletes4'],
    [batch.deletes6, 6, 'deletes6'],
  ];
  for (const [c, family, name] of columns) {
    if (c.family !== family)
      throw new ValidationError(`neighbourBatch.${name}`, `holds IPv${c.family} entries, expected IPv${family}`);
    for (let i = 0; i < c.count; i++)
      if (c.interfaces[i]! >= n)
        throw new ValidationError(
          `neighbourBatch.${name}[${i}].interface`,
          `refers to interface ${c.interfaces[i]}; the table has ${n}`,
        );
  }
  const size =
    1 +
    4 +
    interfaceTableBytes(batch.interfaces) +
    16 +
    batch.adds4.count * ENTRY_BYTES.neighbour4 +
    batch.adds6.count * ENTRY_BYTES.neighbour6 +
    batch.deletes4.count * ENTRY_BYTES.neighbourKey4 +
    batch.deletes6.count * ENTRY_BYTES.neighbourKey6;
  const w = new Writer(size);
  w.u8(MessageType.neighbourBatch);
  w.u32(batch.sequence);
  writeInterfaces(w, batch.interfaces, 'neighbourBatch.interfaces');
  for (const c of [batch.adds4, batch.adds6]) {
    const s = addressBytesLength(c.family);
    w.u32(c.count);
    for (let i = 0; i < c.count; i++) {
      w.bytes(c.addrs.subarray(i * s, (i + 1) * s));
      w.bytes(c.macs.subarray(i * 6, i * 6 + 6));
      w.u16(c.interfaces[i]!);
    }
  }
  for (const c of [batch.deletes4, batch.deletes6]) {
    const s = addressBytesLength(c.family);
    w.u32(c.count);
    for (let i = 0; i < c.count; i++) {
      w.bytes(c.addrs.subarray(i * s, (i + 1) * s));
      w.u16(c.interfaces[i]!);
    }
  }
  return w.done();
}

function readNeighbours(
  r: Reader,
  family: Family,
  field: string,
  tableSize: number,
  trailing: number,
): NeighbourColumns {
  const size = addressBytesLength(family);
  const count = r.count(`${field}.count`, size + 8, trailing);
  const c = {
    family,
    count,
    addrs: new Uint8Array(count * size),
    macs: new Uint8Array(count * 6),
    interfaces: new Uint16Array(count),
  };
  for (let i = 0; i < count; i++) {
    c.addrs.set(r.bytes(size, `${field}[${i}].address`), i * size);
    c.macs.set(r.bytes(6, `${field}[${i}].mac`), i * 6);
    const at = r.offset;
    const ref = r.u16(`${field}[${i}].interface`);
    if (ref >= tableSize)
      r.fail(`${field}[${i}].interface`, `refers to interface ${ref}; the table has ${tableSize}`, at);
    c.interfaces[i] = ref;
  }
  return c;
}

function readNeighbourKeys(
  r: Reader,
  family: Family,
  field: string,
  tableSize: number,
  trailing: number,
): NeighbourKeyColumns {
  const size = addressBytesLength(family);
  const count = r.count(`${field}.count`, size + 2, trailing);
  const c = { family, count, addrs: new Uint8Array(count * size), interfaces: new Uint16Array(count) };
  for (let i = 0; i < count; i++) {
    c.addrs.set(r.bytes(size, `${field}[${i}].address`), i * size);
    const at = r.offset;
    const ref = r.u16(`${field}[${i}].interface`);
    if (ref >= tableSize)
      r.fail(`${field}[${i}].interface`, `refers to interface ${ref}; the table has ${tableSize}`, at);
    c.interfaces[i] = ref;
  }
  return c;
}

export function decodeNeighbourBatch(buf: Uint8Array): NeighbourBatch {
  return guarded('neighbourBatch', () => {
    const r = readMessageType(buf, MessageType.neighbourBatch, 'neighbourBatch');
    const sequence = r.u32('sequence');
    const interfaces = readInterfaces(r);
    const adds4 = readNeighbours(r, 4, 'adds4', interfaces.length, 12);
    const adds6 = readNeighbours(r, 6, 'adds6', interfaces.length, 8);
    const deletes4 = readNeighbourKeys(r, 4, 'deletes4', interfaces.length, 4);
    const deletes6 = readNeighbourKeys(r, 6, 'deletes6', interfaces.length, 0);
    r.end();
    return { type: 'neighbour-batch', sequence, interfaces, adds4, adds6, deletes4, deletes6 };
  });
}

// ---- FilterReplace --------------------------------------------------------------------------

const FILTER_HAS_SRC = 1;
const FILTER_HAS_DST = 2;
const FILTER_HAS_SPORT = 4;
const FILTER_HAS_DPORT = 8;
/** Rules in one FilterReplace; the data plane holds far fewer, the manager says how many. */
export const MAX_FILTER_RULES_ON_WIRE = 1024;

function writeFilterPrefix(w: Writer, text: string | null, family: Family, path: string): void {
  const out = new Uint8Array(17);
  if (text !== null) {
    const p = parsePrefixText(text, path);
    if (p.family !== family) throw new ValidationError(path, `${text} is not IPv${family}`);
    out.set(p.addr, 0);
    out[16] = p.length;
  }
  w.bytes(out);
}

function checkPortRange(range: readonly [number, number] | null, path: string): void {
  if (range === null) return;
  const [lo, hi] = range;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 0xffff && lo <= hi))
    throw new ValidationError(path, `port range ${lo}-${hi} must be 0..65535, low first`);
}

export function encodeFilterReplace(message: Fields<FilterReplace>): Buffer {
  checkSequence(message.sequence, 'filterReplace.sequence');
  if (message.rules.length > MAX_FILTER_RULES_ON_WIRE)
    throw new ValidationError(
      'filterReplace.rules',
      `${message.rules.length} rules; at most ${MAX_FILTER_RULES_ON_WIRE}`,
    );
  const w = new Writer(1 + 4 + 2 + message.rules.length * ENTRY_BYTES.filterRule);
  w.u8(MessageType.filterReplace);
  w.u32(message.sequence);
  w.u16(message.rules.length);
  message.rules.forEach((rule, i) => {
    const path = `filterReplace.rules[${i}]`;
    if (rule.family !== 4 && rule.family !== 6)
      throw new ValidationError(`${path}.family`, `${String(rule.family)} must be 4 or 6`);
    if (!Number.isInteger(rule.proto) || rule.proto < 0 || rule.proto > 255)
      throw new ValidationError(`${path}.proto`, `${rule.proto} must be 0..255`);
    if (!Number.isInteger(rule.handle) || rule.handle < 0 || rule.handle > 0xffffffff)
      throw new ValidationError(`${path}.handle`, `${rule.handle} must be 0..2^32-1`);
    if (rule.action !== 'accept' && rule.action !== 'drop')
      throw new ValidationError(`${path}.action`, `${String(rule.action)} must be accept or drop`);
    checkPortRange(rule.sport, `${path}.sport`);
    checkPortRange(rule.dport, `${path}.dport`);
    w.u32(rule.handle);
    w.u8(rule.family);
    w.u8(rule.proto);
    w.u8(rule.action === 'drop' ? 1 : 0);
    w.u8(
      (rule.src !== null ? FILTER_HAS_SRC : 0) |
        (rule.dst !== null ? FILTER_HAS_DST : 0) |
        (rule.sport !== null ? FILTER_HAS_SPORT : 0) |
        (rule.dport !== null ? FILTER_HAS_DPORT : 0),
    );
    writeFilterPrefix(w, rule.src, rule.family, `${path}.src`);
    writeFilterPrefix(w, rule.dst, rule.family, `${path}.dst`);
    for (const range of [rule.sport, rule.dport]) {
      w.u16(range?.[0] ?? 0);
      w.u16(range?.[1] ?? 0);
    }
  });
  return w.done();
}

function readFilterPrefix(r: Reader, family: Family, present: boolean, field: string): string | null {
  const at = r.offset;
  const bytes = r.bytes(17, field);
  const length = bytes[16]!;
  const size = addressBytesLength(family);
  if (!present) {
    if (bytes.some((b) => b !== 0)) r.fail(field, 'must be zero when absent', at);
    return null;
  }
  if (length > maxPrefixLength(family))
    r.fail(`${field}.length`, `${length} must be 0..${maxPrefixLength(family)}`, at + 16);
  for (let k = size; k < 16; k++) if (bytes[k] !== 0) r.fail(field, 'IPv4 address padding must be zero', at + k);
  return formatPrefixBytes(bytes, length, 0, family);
}

function readPortRange(r: Reader, present: boolean, field: string): [number, number] | null {
  const at = r.offset;
  const lo = r.u16(`${field}.low`);
  const hi = r.u16(`${field}.high`);
  if (!present) {
    if (lo !== 0 || hi !== 0) r.fail(field, 'must be zero when absent', at);
    return null;
  }
  if (lo > hi) r.fail(field, `range ${lo}-${hi} is empty`, at);
  return [lo, hi];
}

export function decodeFilterReplace(buf: Uint8Array): FilterReplace {
  return guarded('filterReplace', () => {
    const r = readMessageType(buf, MessageType.filterReplace, 'filterReplace');
    const sequence = r.u32('sequence');
    const countAt = r.offset;
    const count = r.u16('rules.count');
    if (count > MAX_FILTER_RULES_ON_WIRE || count * ENTRY_BYTES.filterRule > r.remaining()) {
      r.fail('rules.count', `${count} rules cannot fit in the ${r.remaining()} bytes left`, countAt);
    }
    const rules: FilterRule[] = [];
    for (let i = 0; i < count; i++) {
      const field = `rules[${i}]`;
      const handle = r.u32(`${field}.handle`);
      const familyAt = r.offset;
      const familyByte = r.u8(`${field}.family`);
      if (familyByte !== 4 && familyByte !== 6) r.fail(`${field}.family`, `${familyByte} must be 4 or 6`, familyAt);
      const family = familyByte as Family;
      const proto = r.u8(`${field}.proto`);
      const actionAt = r.offset;
      const actionByte = r.u8(`${field}.action`);
      if (actionByte > 1) r.fail(`${field}.action`, `${actionByte} must be 0 (accept) or 1 (drop)`, actionAt);
      const flagsAt = r.offset;
      const flags = r.u8(`${field}.flags`);
      if (flags & ~0x0f) r.fail(`${field}.flags`, `unknown flags 0x${flags.toString(16)}`, flagsAt);
      const src = readFilterPrefix(r, family, (flags & FILTER_HAS_SRC) !== 0, `${field}.src`);
      const dst = readFilterPrefix(r, family, (flags & FILTER_HAS_DST) !== 0, `${field}.dst`);
      const sport = readPortRange(r, (flags & FILTER_HAS_SPORT) !== 0, `${field}.sport`);
      const dport = readPortRange(r, (flags & FILTER_HAS_DPORT) !== 0, `${field}.dport`);
      rules.push({ handle, family, proto, src, dst, sport, dport, action: actionByte === 1 ? 'drop' : 'accept' });
    }
    r.end();
    return { type: 'filter-replace', sequence, rules };
  });
}

// ---- EndOfSync ----------------------------------------------------------------------------------

export function encodeEndOfSync(message: Fields<EndOfSync>): Buffer {
  checkSequence(message.sequence, 'endOfSync.sequence');
  const w = new Writer(5);
  w.u8(MessageType.endOfSync);
  w.u32(message.sequence);
  return w.done();
}

export function decodeEndOfSync(buf: Uint8Array): EndOfSync {
  return guarded('endOfSync', () => {
    const r = readMessageType(buf, MessageType.endOfSync, 'endOfSync');
    const sequence = r.u32('sequence');
    r.end();
    return { type: 'end-of-sync', sequence };
  });
}

// ---- Ack ------------------------------------------------------------------------------------------

const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/;

/** Cuts a UTF-8 string to at most `max` bytes without splitting a character. */
function truncateUtf8(text: string, max: number): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Error messages longer than the limit are cut, not refused: an Ack must always be sendable. */
export function encodeAck(ack: Fields<Ack>): Buffer {
  checkSequence(ack.sequence, 'ack.sequence');
  if (ack.ok && (ack.errorCode !== '' || ack.errorMessage !== ''))
    throw new ValidationError('ack', 'a positive Ack carries no error');
  if (!ack.ok && !(ERROR_CODE.test(ack.errorCode) && ack.errorCode.length <= MAX_ERROR_CODE_BYTES)) {
    throw new ValidationError(
      'ack.errorCode',
      `${JSON.stringify(ack.errorCode)} must be 1..${MAX_ERROR_CODE_BYTES} of A-Z, 0-9, _`,
    );
  }
  const code = utf8.encode(ack.errorCode);
  const message = truncateUtf8(ack.errorMessage, MAX_ERROR_MESSAGE_BYTES);
  const w = new Writer(1 + 4 + 1 + 1 + code.length + 2 + message.length);
  w.u8(MessageType.ack);
  w.u32(ack.sequence);
  w.u8(ack.ok ? 1 : 0);
  w.u8(code.length);
  w.bytes(code);
  w.u16(message.length);
  w.bytes(message);
  return w.done();
}

export function decodeAck(buf: Uint8Array): Ack {
  return guarded('ack', () => {
    const r = readMessageType(buf, MessageType.ack, 'ack');
    const sequence = r.u32('sequence');
    const okAt = r.offset;
    const okByte = r.u8('ok');
    if (okByte > 1) r.fail('ok', `${okByte} must be 0 or 1`, okAt);
    const codeAt = r.offset;
    const codeLength = r.u8('errorCodeLength');
    if (codeLength > MAX_ERROR_CODE_BYTES)
      r.fail('errorCodeLength', `${codeLength} is more than ${MAX_ERROR_CODE_BYTES}`, codeAt);
    const errorCode = r.text(codeLength, 'errorCode');
    const messageAt = r.offset;
    const messageLength = r.u16('errorMessageLength');
    if (messageLength > MAX_ERROR_MESSAGE_BYTES)
      r.fail('errorMessageLength', `${messageLength} is more than ${MAX_ERROR_MESSAGE_BYTES}`, messageAt);
    const errorMessage = r.text(messageLength, 'errorMessage');
    if (okByte === 1 && (codeLength !== 0 || messageLength !== 0))
      r.fail('errorCode', 'a positive Ack carries no error', codeAt);
    if (okByte === 0 && !ERROR_CODE.test(errorCode))
      r.fail('errorCode', `${JSON.stringify(errorCode)} is not an error code`, codeAt + 1);
    r.end();
    return { type: 'ack', sequence, ok: okByte === 1, errorCode, errorMessage };
  });
}

// ---- any message ------------------------------------------------------------------------------------

/** Decodes one record payload of any type; throws only ProtocolError. */
export function decodeMessage(buf: Uint8Array): UpdateMessage {
  if (buf.length === 0) throw new ProtocolError('message.type', 0, 'empty payload');
  switch (buf[0]) {
    case MessageType.hello:
      return decodeHello(buf);
    case MessageType.routeBatch:
      return decodeRouteBatch(buf);
    case MessageType.neighbourBatch:
      return decodeNeighbourBatch(buf);
    case MessageType.filterReplace:
      return decodeFilterReplace(buf);
    case MessageType.endOfSync:
      return decodeEndOfSync(buf);
    case MessageType.ack:
      return decodeAck(buf);
    default:
      throw new ProtocolError('message.type', 0, `unknown message type ${buf[0]}`);
  }
}
