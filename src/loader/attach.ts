// Attaching programs to interfaces through bpf links, pinned so that they outlive
// the daemon. A new daemon finds the pinned link and swaps its program in place
// (bpf_link_update): the interface is never without a program, so a restart is
// hitless.
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { XnetmonError, SystemCallError } from '../errors/index.js';
import { native, errnoOf } from './libbpf.js';
import type { BpfProgram } from './object.js';

const BPF_XDP = 37;
const BPF_TCX_EGRESS = 47;
const BPF_TCX_INGRESS = 46;
const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;

export type XdpMode = 'native' | 'generic';
export type AttachPoint = 'xdp' | 'tc-egress' | 'tc-ingress';

export interface Attachment {
  readonly ifindex: number;
  readonly point: AttachPoint;
  /** XDP only: which mode the kernel accepted. */
  readonly mode?: XdpMode;
  /** True when an existing pinned link was updated in place (restart). */
  readonly replaced: boolean;
  readonly pinPath?: string;
}

export function ifindexOf(name: string): number {
  const index = native.if_nametoindex(name);
  if (!index) throw new XnetmonError('ERR_NO_INTERFACE', `no such interface: ${name}`);
  return index;
}

function linkCreateOpts(flags: number): Buffer {
  // struct bpf_link_create_opts { size_t sz; __u32 flags; ... }: we pass only sz and flags.
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(flags, 8);
  return opts;
}

/** The ifindex a link is attached to, or 0 when it is defunct (device gone). */
function linkIfindex(linkFd: number): number {
  // struct bpf_link_info { __u32 type, id, prog_id; union { xdp { __u32 ifindex }; tcx { __u32 ifindex; ... } } }:
  // the union holds 64-bit members, so it starts at offset 16.
  const info = Buffer.alloc(64);
  const len = [info.length];
  if (native.obj_get_info_by_fd(linkFd, info, len) < 0) return 0;
  return info.readUInt32LE(16);
}

function tryReplace(pinPath: string | undefined, ifindex: number, prog: BpfProgram): boolean {
  if (!pinPath || !existsSync(pinPath)) return false;
  const linkFd = native.obj_get(pinPath);
  if (linkFd < 0) return false;
  try {
    if (linkIfindex(linkFd) === ifindex && native.link_update(linkFd, prog.fd, null) === 0) return true;
    // Stale pin (interface recreated, or link defunct): drop it and attach afresh.
    unlinkSync(pinPath);
    return false;
  } finally {
    native.close(linkFd);
  }
}

function pin(linkFd: number, pinPath: string | undefined): void {
  if (!pinPath) return;
  mkdirSync(dirname(pinPath), { recursive: true });
  const ret = native.obj_pin(linkFd, pinPath);
  if (ret < 0) throw new SystemCallError(`bpf_obj_pin(${pinPath})`, errnoOf(ret));
}

export interface XdpAttachOptions {
  /** 'auto' tries native first and falls back to generic (reported in the result). */
  mode?: XdpMode | 'auto';
  /** Pin the link here so it survives this process; re-used on the next attach. */
  pinPath?: string;
}

export function attachXdp(prog: BpfProgram, ifindex: number, options: XdpAttachOptions = {}): Attachment {
  if (tryReplace(options.pinPath, ifindex, prog)) return { ifindex, point: 'xdp', replaced: true, pinPath: options.pinPath };
  const wanted = options.mode ?? 'auto';
  const modes: XdpMode[] = wanted === 'auto' ? ['native', 'generic'] : [wanted];
  let lastErrno = 0;
  for (const mode of modes) {
    const flags = mode === 'native' ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    const linkFd = native.link_create(prog.fd, ifindex, BPF_XDP, linkCreateOpts(flags));
    if (linkFd < 0) {
      lastErrno = errnoOf(linkFd);
      continue;
    }
    try {
      pin(linkFd, options.pinPath);
    } finally {
      // The pin (or, without one, nothing) keeps the link: without a pin it goes when the fd closes,
      // so unpinned links are kept open for the life of the process.
      if (options.pinPath) native.close(linkFd);
      else heldLinks.add(linkFd);
    }
    return { ifindex, point: 'xdp', mode, replaced: false, pinPath: options.pinPath };
  }
  throw new SystemCallError(`XDP attach to ifindex ${ifindex} (${modes.join(', ')})`, lastErrno,
    lastErrno === 16 ? 'another XDP program is attached (detach it first)' : undefined);
}

const heldLinks = new Set<number>();

export function attachTc(prog: BpfProgram, ifindex: number, point: 'tc-egress' | 'tc-ingress', pinPath?: string): Attachment {
  if (tryReplace(pinPath, ifindex, prog)) return { ifindex, point, replaced: true, pinPath };
  const linkFd = native.link_create(prog.fd, ifindex, point === 'tc-egress' ? BPF_TCX_EGRESS : BPF_TCX_INGRESS, null);
  if (linkFd < 0) throw new SystemCallError(`tcx attach to ifindex ${ifindex}`, errnoOf(linkFd));
  if (pinPath) {
    try {
      pin(linkFd, pinPath);
    } finally {
      native.close(linkFd);
    }
  } else {
    heldLinks.add(linkFd);
  }
  return { ifindex, point, replaced: false, pinPath };
}

/** Detaches the pinned link and removes the pin. Returns false when there was none. */
export function detachPinned(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false;
  const linkFd = native.obj_get(pinPath);
  if (linkFd >= 0) {
    native.link_detach(linkFd);
    native.close(linkFd);
  }
  unlinkSync(pinPath);
  return true;
}

/** Releases links held by this process without pins (they detach). */
export function releaseHeldLinks(): void {
  for (const fd of heldLinks) native.close(fd);
  heldLinks.clear();
}
