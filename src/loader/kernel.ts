// The kernel features the data plane uses, the first Linux release that has each,
// and what XNetMon does without it: the table behind the start-up check and behind
// docs/operations.md ("Supported kernels"). A feature with a fallback is probed when
// it is used (tcx by its first attach, native XDP per interface); a feature without
// one sets the floor, and a kernel under it gets one error naming the version.
import { XnetmonError } from '../errors/index.js';

export interface KernelFeature {
  feature: string;
  /** First mainline release that has it, "major.minor". */
  since: string;
  /** What XNetMon does on a kernel without it; undefined: nothing, it is required. */
  fallback?: string;
}

export const KERNEL_FEATURES: readonly KernelFeature[] = [
  { feature: 'LPM trie maps', since: '4.11' },
  { feature: 'per-CPU array maps', since: '4.6' },
  { feature: 'clsact qdisc + cls_bpf direct-action (TC egress accounting)', since: '4.5' },
  { feature: 'DEVMAP_HASH (bpf_redirect_map by ifindex)', since: '5.4' },
  { feature: 'batch map operations (controller reads, drop writes)', since: '5.6' },
  { feature: 'global BPF functions (the filter rule scan, verified once)', since: '5.6' },
  { feature: 'XDP bpf links (pinned, hitless bpf_link_update)', since: '5.9' },
  { feature: 'batch updates of LPM tries (route loads)', since: '5.13' },
  {
    feature: "native XDP on the interface's driver",
    since: 'per driver',
    fallback: 'generic (skb) XDP, e.g. on Xen netback vifs: slower, same verdicts',
  },
  {
    feature: 'tcx links for TC programs',
    since: '6.6',
    fallback: 'a cls_bpf filter on a clsact qdisc (replaced in place, so restarts stay hitless)',
  },
];

/** The oldest release with every feature that has no fallback. */
export const KERNEL_FLOOR = '5.13';
/** The oldest release CI tests (Debian 12's, in a VM: make test-kernel). */
export const KERNEL_TESTED = '6.1';

function parseRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(release: [number, number], version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return release[0] > major || (release[0] === major && release[1] >= minor);
}

/**
 * Refuses a kernel under the floor with one error naming what it lacks; returns a warning
 * for a kernel above the floor but older than the oldest one tested, else undefined.
 */
export function checkKernel(release: string): string | undefined {
  const parsed = parseRelease(release);
  if (!parsed) return `kernel release ${JSON.stringify(release)} not understood: the feature check was skipped`;
  const missing = KERNEL_FEATURES.filter((f) => !f.fallback && !atLeast(parsed, f.since));
  if (missing.length) {
    throw new XnetmonError(
      'ERR_KERNEL',
      `XNetMon needs Linux ${KERNEL_FLOOR} or later; this kernel is ${release} and lacks ${missing.map((f) => `${f.feature} (${f.since})`).join(', ')}`,
    );
  }
  if (!atLeast(parsed, KERNEL_TESTED))
    return `Linux ${release} has every feature XNetMon needs but is older than ${KERNEL_TESTED}, the oldest kernel it is tested on`;
  return undefined;
}

/** Whether tcx links are expected on this release (the attach probes it anyway). */
export function kernelHasTcx(release: string): boolean {
  const parsed = parseRelease(release);
  return parsed ? atLeast(parsed, '6.6') : false;
}
