// The programs on interfaces: XDP (and TC egress on physical links) attached through bpf links
// pinned under <pinDir>/links, so that forwarding survives a daemon restart; detaching; and what
// the kernel reports running on an interface.
import { join } from 'node:path';
import {
  attachTc,
  attachXdp,
  detachPinned,
  detachTc,
  ifindexOf,
  tcModeOf,
  xdpModeOf,
  type Attachment,
  type BpfObject,
} from '../loader/index.js';
import { linkPinName, type LinkPinKind } from './pins.js';

/** How programs are attached: 'auto' picks the best mode the kernel and driver offer. */
export interface AttachModes {
  xdp?: 'auto' | 'native' | 'generic';
  tc?: 'auto' | 'tcx' | 'cls_bpf';
}

/** An interface's index, or 0 when it does not exist (any more). */
function interfaceIndex(ifname: string): number {
  try {
    return ifindexOf(ifname);
  } catch {
    return 0;
  }
}

export class ProgramAttachments {
  constructor(
    private readonly object: BpfObject,
    private readonly pinDir: string | undefined,
  ) {}

  private linkPin(kind: LinkPinKind, ifname: string): string | undefined {
    return this.pinDir ? join(this.pinDir, 'links', linkPinName(kind, ifname)) : undefined;
  }

  /** XDP (fast path) and TC egress (link accounting) on a physical interface. */
  attachPhysical(ifname: string, modes: AttachModes = {}): Attachment[] {
    const ifindex = ifindexOf(ifname);
    return [
      attachXdp(this.object.program('xnm_phys_in'), ifindex, {
        mode: modes.xdp ?? 'auto',
        pinPath: this.linkPin('xdp', ifname),
      }),
      attachTc(this.object.program('xnm_link_out'), ifindex, 'tc-egress', {
        mode: modes.tc ?? 'auto',
        pinPath: this.linkPin('tc', ifname),
      }),
    ];
  }

  /** XDP (the router's traffic) and TC egress (what the host sends the router, charged to it) on a vif. */
  attachVif(ifname: string, modes: AttachModes = {}): Attachment[] {
    const ifindex = ifindexOf(ifname);
    return [
      attachXdp(this.object.program('xnm_vif_in'), ifindex, {
        mode: modes.xdp ?? 'auto',
        pinPath: this.linkPin('xdp', ifname),
      }),
      attachTc(this.object.program('xnm_vif_out'), ifindex, 'tc-egress', {
        mode: modes.tc ?? 'auto',
        pinPath: this.linkPin('tc', ifname),
      }),
    ];
  }

  /** Removes our programs from an interface (pinned links, and a cls_bpf filter on older kernels). */
  detach(ifname: string): void {
    const xdp = this.linkPin('xdp', ifname);
    if (xdp) detachPinned(xdp);
    detachTc(interfaceIndex(ifname), 'tc-egress', this.linkPin('tc', ifname));
  }

  /** What runs on an interface, as the kernel reports it: XDP mode and TC mode. */
  attachedModes(ifname: string): { xdp: string; tc: string } {
    const ifindex = interfaceIndex(ifname);
    if (!ifindex) return { xdp: 'none', tc: 'none' };
    return { xdp: xdpModeOf(ifindex), tc: tcModeOf(ifindex, 'tc-egress', this.linkPin('tc', ifname)) };
  }
}
