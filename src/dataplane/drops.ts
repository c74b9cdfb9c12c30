// Paper IV-A: the drop probabilities the controller sets for each network (xnm_drops): CPU,
// residual, and one per output link, as thresholds on bpf_get_prandom_u32().
import { MAX_LINKS, dropLayout, type BpfMap } from '../loader/index.js';
import { checkNetId, u32Key } from './shared.js';
import { fairRate } from './fair.js';

export interface DropProbabilities {
  cpu: number;
  residual: number;
  /** Indexed by link slot. */
  links: readonly number[];
  /** The fair per-flow rate (sketch units, fair.ts): CPU drops spare flows at or under it. 0 or absent: random drops. */
  fair?: number;
}

/** Drop probability in [0,1] -> threshold on bpf_get_prandom_u32(). */
export function probabilityToThreshold(p: number): number {
  if (!(p > 0)) return 0;
  if (p >= 1) return 0xffffffff;
  return Math.min(0xffffffff, Math.round(p * 4294967296));
}

export function thresholdToProbability(t: number): number {
  return t >= 0xffffffff ? 1 : t / 4294967296;
}

export class Drops {
  constructor(private readonly map: BpfMap) {}

  set(netId: number, drops: DropProbabilities): void {
    checkNetId(netId);
    const value = dropLayout.encode({
      cpu: probabilityToThreshold(drops.cpu),
      residual: probabilityToThreshold(drops.residual),
      link: drops.links.map(probabilityToThreshold),
      cpu_fair: fairRate(drops.fair),
    });
    this.map.update(u32Key(netId), value);
  }

  /** Many networks at once: one syscall (the controller's write each period). */
  setBatch(entries: readonly { netId: number; drops: DropProbabilities }[]): void {
    const keys = new Uint32Array(entries.length);
    const words = dropLayout.size >> 2;
    const values = new Uint32Array(entries.length * words);
    const oLink = dropLayout.field('link').offset >> 2;
    const oFair = dropLayout.field('cpu_fair').offset >> 2;
    entries.forEach((e, i) => {
      checkNetId(e.netId);
      keys[i] = e.netId;
      values[i * words] = probabilityToThreshold(e.drops.cpu);
      values[i * words + 1] = probabilityToThreshold(e.drops.residual);
      const links = e.drops.links;
      for (let l = 0; l < links.length && l < MAX_LINKS; l++)
        values[i * words + oLink + l] = probabilityToThreshold(links[l]);
      values[i * words + oFair] = fairRate(e.drops.fair);
    });
    this.map.updateBatch(Buffer.from(keys.buffer), Buffer.from(values.buffer), entries.length);
  }

  read(netId: number): DropProbabilities {
    const d = dropLayout.decode(this.map.lookup(u32Key(netId)) ?? Buffer.alloc(dropLayout.size));
    return {
      cpu: thresholdToProbability(d.cpu as number),
      residual: thresholdToProbability(d.residual as number),
      links: (d.link as number[]).map(thresholdToProbability),
      fair: d.cpu_fair as number,
    };
  }

  /** No drops for the network. */
  clear(netId: number): void {
    this.map.update(u32Key(netId), Buffer.alloc(dropLayout.size));
  }
}
