// Paper IV-B: each network's replicated packet filter (xnm_filters): MAX_FILTER_RULES slots per
// network, first match wins, an all-zero slot ends the list.
import { ValidationError } from '../errors/index.js';
import { MAX_FILTER_RULES, filterRuleLayout, type BpfMap } from '../loader/index.js';
import { parsePrefix } from './prefix.js';
import { u32Key, type FlowCacheGeneration } from './shared.js';

export interface FilterRuleSpec {
  family: 4 | 6;
  proto?: number;
  src?: string;
  dst?: string;
  sport?: [number, number];
  dport?: [number, number];
  action: 'accept' | 'drop';
}

export function encodeRule(rule: FilterRuleSpec, path: string): Buffer {
  const words = (text: string | undefined, field: string): { addr: number[]; mask: number[] } => {
    if (!text) return { addr: [0, 0, 0, 0], mask: [0, 0, 0, 0] };
    const p = parsePrefix(text, `${path}.${field}`);
    if (p.family !== rule.family) throw new ValidationError(`${path}.${field}`, `${text} is not IPv${rule.family}`);
    const addr = [0, 0, 0, 0];
    const mask = [0, 0, 0, 0];
    for (let w = 0; w < p.addr.length / 4; w++) {
      addr[w] = p.addr.readUInt32BE(w * 4);
      const bits = Math.max(0, Math.min(32, p.length - w * 32));
      mask[w] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    }
    return { addr, mask };
  };
  const range = (r: [number, number] | undefined, field: string): [number, number] => {
    if (!r) return [0, 0xffff];
    if (!(Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] >= 0 && r[1] <= 0xffff && r[0] <= r[1])) {
      throw new ValidationError(`${path}.${field}`, `port range ${r[0]}-${r[1]} is invalid`);
    }
    return r;
  };
  const src = words(rule.src, 'src');
  const dst = words(rule.dst, 'dst');
  const sport = range(rule.sport, 'sport');
  const dport = range(rule.dport, 'dport');
  return filterRuleLayout.encode({
    family: rule.family,
    proto: rule.proto ?? 0,
    action: rule.action === 'drop' ? 1 : 0,
    sport_lo: sport[0],
    sport_hi: sport[1],
    dport_lo: dport[0],
    dport_hi: dport[1],
    src: src.addr,
    src_mask: src.mask,
    dst: dst.addr,
    dst_mask: dst.mask,
  });
}

export class Filters {
  constructor(
    private readonly map: BpfMap,
    private readonly generation: FlowCacheGeneration,
  ) {}

  /** Replaces a network's filter; every rule is encoded (and checked) before a slot is written. */
  set(netId: number, rules: readonly FilterRuleSpec[]): void {
    if (rules.length > MAX_FILTER_RULES) {
      throw new ValidationError('filter', `${rules.length} rules; at most ${MAX_FILTER_RULES} per network`);
    }
    const encoded = rules.map((r, i) => encodeRule(r, `filter[${i}]`));
    try {
      this.writeSlots(netId, encoded);
    } finally {
      this.generation.bump(); // a cached slot remembers whether its network had rules
    }
  }

  /** Empties a network's slots without bumping the generation (the caller does). */
  clear(netId: number): void {
    this.writeSlots(netId, []);
  }

  private writeSlots(netId: number, encoded: readonly Buffer[]): void {
    for (let i = 0; i < MAX_FILTER_RULES; i++) {
      this.map.update(u32Key(netId * MAX_FILTER_RULES + i), encoded[i] ?? Buffer.alloc(filterRuleLayout.size));
    }
  }
}
