// Test support: hostile frames. A seeded generator of malformed and edge frames
// (truncations, header-length lies, VLAN stacks, IPv6 extension chains, random bytes),
// and trafgen (netsniff-ng) to put them on a wire from inside a namespace.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFrame, type Ipv6Extension } from '../../src/packet/index.js';
import { nsExec } from '../../src/lab/index.js';
import { prng } from './prng.js';

export { prng } from './prng.js';

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Source MACs to pick from (a router's own, or forged ones). */
  sources: readonly string[];
  /** Destination MACs to pick from. */
  destinations: readonly string[];
  /** Addresses to put in IP headers. */
  src4: string;
  dst4: string;
}

const EXT_TYPES: Ipv6Extension['type'][] = [0, 43, 44, 51, 60];

/** Frames of 14 to 1514 bytes, each malformed or at an edge in one of six ways, in turn. */
export function fuzzFrames(o: FuzzOptions): Buffer[] {
  const rand = prng(o.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  const int = (n: number): number => Math.floor(rand() * n);
  const frames: Buffer[] = [];
  for (let i = 0; i < o.count; i++) {
    const src = pick(o.sources);
    const dst = pick(o.destinations);
    const l4 =
      rand() < 0.5
        ? { udp: { sport: int(65536), dport: int(65536) } }
        : { tcp: { sport: int(65536), dport: int(65536) } };
    let frame: Buffer;
    switch (i % 6) {
      case 0: {
        // a valid frame cut anywhere after the Ethernet header (and its tag: a switch's
        // kernel drops a tagged frame too short for its tag, so such a frame never reaches a host)
        const vlan = rand() < 0.3 ? 1 + int(4094) : 0;
        const whole =
          rand() < 0.5
            ? buildFrame({ src, dst, vlan, ipv4: { src: o.src4, dst: o.dst4, ...l4, payload: int(200) } })
            : buildFrame({ src, dst, ipv6: { src: '2001:db8::2', dst: '2001:db8:9::1', ...l4, payload: int(200) } });
        const least = vlan ? 18 : 14;
        frame = whole.subarray(0, least + int(whole.length - least + 1));
        break;
      }
      case 1: {
        // IPv4 header fields that lie: IHL, total length, version, fragment offset, TTL
        frame = buildFrame({ src, dst, ipv4: { src: o.src4, dst: o.dst4, ttl: int(3), ...l4, payload: int(64) } });
        frame[14] = (rand() < 0.8 ? 0x40 : int(16) << 4) | int(16);
        frame.writeUInt16BE(int(65536), 16);
        if (rand() < 0.3) frame.writeUInt16BE(int(65536), 20);
        break;
      }
      case 2: {
        // VLAN stacks: one to three tags of 802.1Q or 802.1ad in front
        frame = buildFrame({ src, dst, ipv4: { src: o.src4, dst: o.dst4, ...l4, payload: int(64) } });
        const tags = 1 + int(3);
        for (let t = 0; t < tags; t++) {
          const tag = Buffer.alloc(4);
          tag.writeUInt16BE(rand() < 0.5 ? 0x8100 : 0x88a8, 0);
          tag.writeUInt16BE(int(4096), 2);
          frame = Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
        }
        break;
      }
      case 3: {
        // IPv6 extension chains: up to twelve headers, sometimes cut, sometimes lying about their length
        const extensions = Array.from(
          { length: int(13) },
          (): Ipv6Extension => ({ type: pick(EXT_TYPES), fragmentOffset: rand() < 0.5 ? 0 : int(8192) }),
        );
        frame = buildFrame({
          src,
          dst,
          ipv6: { src: '2001:db8::2', dst: '2001:db8:9::1', extensions, ...l4, payload: int(64) },
        });
        if (extensions.length && rand() < 0.3) frame[14 + 40 + 1] = int(256);
        if (rand() < 0.3) frame = frame.subarray(0, 14 + 40 + int(frame.length - 54));
        break;
      }
      case 4: {
        // random bytes behind an Ethernet header with a random or a known EtherType
        const body = Buffer.alloc(4 + int(1496)); // a tag's four bytes at least (see case 0)
        for (let b = 0; b < body.length; b++) body[b] = int(256);
        const head = Buffer.alloc(14);
        Buffer.from(dst.split(':').map((h) => parseInt(h, 16))).copy(head, 0);
        Buffer.from(src.split(':').map((h) => parseInt(h, 16))).copy(head, 6);
        head.writeUInt16BE(pick([0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, int(65536)]), 12);
        frame = Buffer.concat([head, body]);
        break;
      }
      default: {
        // ARP with lies, IPv4 options, multicast and broadcast destinations
        frame =
          rand() < 0.5
            ? buildFrame({
                src,
                dst,
                arp: { op: rand() < 0.5 ? 1 : 2, senderMac: pick(o.sources), senderIp: o.src4, targetIp: o.dst4 },
              })
            : buildFrame({
                src,
                dst: pick([dst, 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:05', '33:33:00:00:00:01']),
                ipv4: {
                  src: o.src4,
                  dst: pick([o.dst4, '224.0.0.5', '255.255.255.255']),
                  options: Buffer.alloc(4 * int(11), 1),
                  ...l4,
                },
              });
        if (frame.length > 20 && rand() < 0.3) frame = frame.subarray(0, 14 + int(frame.length - 13));
      }
    }
    frames.push(frame.length > 1514 ? frame.subarray(0, 1514) : frame);
  }
  return frames;
}

/** Sends each frame once from `dev` in namespace `ns` with trafgen; returns when all are sent. */
export function sendFrames(ns: string, dev: string, frames: readonly Buffer[], dir: string, name = 'frames'): void {
  const config = frames
    .map((f) => `{ ${[...f].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')} }`)
    .join('\n');
  const path = join(dir, `${name}.trafgen`);
  writeFileSync(path, `${config}\n`);
  // One process (-P 1), each frame once (-n), so that what was sent is exactly `frames`. --gap:
  // one blocking sendto per frame (the TX_RING path's flush gives up on EAGAIN instead, "Flushing
  // TX_RING failed", as it did in the 6.1 VM under TCG), 10 us apart: back to back, a loaded machine
  // let the veth peers' backlog overflow, and CI counted 2,999 of 3,000 frames at the host's XDP.
  nsExec(ns, [
    'trafgen',
    '--dev',
    dev,
    '--conf',
    path,
    '-n',
    String(frames.length),
    '--cpus',
    '1',
    '--gap',
    '10us',
    '--no-sock-mem',
    '--notouch-irq',
    '--no-cpu-stats',
  ]);
}
