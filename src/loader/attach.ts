// Attaching programs to interfaces through bpf links, pinned so that they outlive
// the daemon. A new daemon finds the pinned link and swaps its program in place
// (bpf_link_update): the interface is never without a program, so a restart is
// hitless. Kernels before 6.6 have no tcx links: TC programs then go on a clsact
// qdisc as a cls_bpf filter (netlink), which the kernel keeps without a pin and
// which a new daemon replaces in place (same handle and priority): hitless too.
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
/** tcx: a bpf link (Linux 6.6+); cls_bpf: a filter on a clsact qdisc (any kernel since 4.5). */
export type TcMode = 'tcx' | 'cls_bpf';
export type AttachPoint = 'xdp' | 'tc-egress' | 'tc-ingress';

export interface Attachment {
  readonly ifindex: number;
  readonly point: AttachPoint;
  /** Which mode the kernel accepted (XDP: native or generic; TC: tcx or cls_bpf); unknown after an XDP link update. */
  readonly mode?: XdpMode | TcMode;
  /** True when an existing pinned link was updated in place (restart). */
  readonly replaced: boolean;
  readonly pinPath?: string;
}

/** The name of an interface, or undefined when there is none with this index. */
export function ifnameOf(ifindex: number): string | undefined {
  return native.if_indextoname(ifindex, Buffer.alloc(16)) ?? undefined;
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
  if (tryReplace(options.pinPath, ifindex, prog))
    return { ifindex, point: 'xdp', replaced: true, pinPath: options.pinPath };
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
  throw new SystemCallError(
    `XDP attach to ifindex ${ifindex} (${modes.join(', ')})`,
    lastErrno,
    lastErrno === 16 ? 'another XDP program is attached (detach it first)' : undefined,
  );
}

const heldLinks = new Set<number>();

// Our cls_bpf filter's identity on a clsact hook: a new attach with the same handle and
// priority replaces it atomically, and detach removes only ours.
const TC_HANDLE = 0x584e; // "XN"
const TC_PRIORITY = 1;
const BPF_TC_INGRESS = 1 << 0;
const BPF_TC_EGRESS = 1 << 1;
const BPF_TC_F_REPLACE = 1 << 0;
const EEXIST = 17;
const ENOENT = 2;
const EINVAL = 22;

/** Whether this kernel has tcx links: probed by the first TC attach, then remembered. */
let tcxAvailable: boolean | undefined;

export interface TcAttachOptions {
  /** 'auto' uses tcx where the kernel has it and cls_bpf otherwise. */
  mode?: TcMode | 'auto';
  /** tcx only: pin the link here so it survives this process. */
  pinPath?: string;
}

function tcHook(ifindex: number, point: 'tc-egress' | 'tc-ingress'): Buffer {
  // struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; size_t :0 }
  const hook = Buffer.alloc(24);
  hook.writeBigUInt64LE(24n, 0);
  hook.writeInt32LE(ifindex, 8);
  hook.writeUInt32LE(point === 'tc-egress' ? BPF_TC_EGRESS : BPF_TC_INGRESS, 12);
  return hook;
}

function tcOpts(progFd: number, flags: number): Buffer {
  // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; size_t :0 }
  const opts = Buffer.alloc(32);
  opts.writeBigUInt64LE(32n, 0);
  opts.writeInt32LE(progFd, 8);
  opts.writeUInt32LE(flags, 12);
  opts.writeUInt32LE(TC_HANDLE, 20);
  opts.writeUInt32LE(TC_PRIORITY, 24);
  return opts;
}

function attachTcx(
  prog: BpfProgram,
  ifindex: number,
  point: 'tc-egress' | 'tc-ingress',
  pinPath: string | undefined,
): number {
  const linkFd = native.link_create(prog.fd, ifindex, point === 'tc-egress' ? BPF_TCX_EGRESS : BPF_TCX_INGRESS, null);
  if (linkFd < 0) return -errnoOf(linkFd);
  if (pinPath) {
    try {
      pin(linkFd, pinPath);
    } finally {
      native.close(linkFd);
    }
  } else {
    heldLinks.add(linkFd);
  }
  return 0;
}

function attachClsBpf(prog: BpfProgram, ifindex: number, point: 'tc-egress' | 'tc-ingress'): void {
  const hook = tcHook(ifindex, point);
  const created = native.tc_hook_create(hook);
  if (created < 0 && errnoOf(created) !== EEXIST)
    throw new SystemCallError(`clsact qdisc on ifindex ${ifindex}`, errnoOf(created));
  const ret = native.tc_attach(hook, tcOpts(prog.fd, BPF_TC_F_REPLACE));
  if (ret < 0) throw new SystemCallError(`cls_bpf attach to ifindex ${ifindex}`, errnoOf(ret));
}

/** Removes our cls_bpf filter; false when there was none. The clsact qdisc stays (others may use it). */
function detachClsBpf(ifindex: number, point: 'tc-egress' | 'tc-ingress'): boolean {
  const ret = native.tc_detach(tcHook(ifindex, point), tcOpts(0, 0));
  if (ret < 0 && errnoOf(ret) !== ENOENT && errnoOf(ret) !== EINVAL)
    throw new SystemCallError(`cls_bpf detach from ifindex ${ifindex}`, errnoOf(ret));
  return ret === 0;
}

/**
 * TC program on an interface. With a pinned tcx link from an earlier run, its program is swapped
 * in place; otherwise tcx where the kernel has it (6.6+), else a cls_bpf filter (replaced in place
 * when ours is already there). Moving between the two modes attaches the new one before the old
 * one goes, so the interface is never without the program.
 */
export function attachTc(
  prog: BpfProgram,
  ifindex: number,
  point: 'tc-egress' | 'tc-ingress',
  options: TcAttachOptions = {},
): Attachment {
  const wanted = options.mode ?? 'auto';
  const pinPath = options.pinPath;
  if (wanted !== 'cls_bpf' && tryReplace(pinPath, ifindex, prog)) {
    detachClsBpf(ifindex, point); // left by a run in cls_bpf mode
    return { ifindex, point, mode: 'tcx', replaced: true, pinPath };
  }
  if (wanted === 'tcx' || (wanted === 'auto' && tcxAvailable !== false)) {
    const ret = attachTcx(prog, ifindex, point, pinPath);
    if (ret === 0) {
      tcxAvailable = true;
      const hadFilter = detachClsBpf(ifindex, point);
      return { ifindex, point, mode: 'tcx', replaced: hadFilter, pinPath };
    }
    // EINVAL for an attach type the kernel does not know: tcx arrived in Linux 6.6.
    if (wanted === 'tcx' || -ret !== EINVAL) {
      throw new SystemCallError(
        `tcx attach to ifindex ${ifindex}`,
        -ret,
        -ret === EINVAL ? 'tcx links need Linux 6.6 or later (host.tc_mode: auto falls back to cls_bpf)' : undefined,
      );
    }
    tcxAvailable = false;
  }
  const replaced = tcFilterPresent(ifindex, point);
  attachClsBpf(prog, ifindex, point);
  if (pinPath && existsSync(pinPath)) detachPinned(pinPath); // a tcx link of an earlier run in the other mode
  return { ifindex, point, mode: 'cls_bpf', replaced, pinPath };
}

/** Whether our cls_bpf filter is on this hook. */
function tcFilterPresent(ifindex: number, point: 'tc-egress' | 'tc-ingress'): boolean {
  const opts = tcOpts(0, 0);
  return native.tc_query(tcHook(ifindex, point), opts) === 0;
}

/** Removes whatever TC program of ours is on the interface: the pinned tcx link, our cls_bpf filter, or both. */
export function detachTc(ifindex: number, point: 'tc-egress' | 'tc-ingress', pinPath?: string): boolean {
  const link = pinPath ? detachPinned(pinPath) : false;
  const filter = ifindex > 0 ? detachClsBpf(ifindex, point) : false;
  return link || filter;
}

/** The mode the kernel runs an interface's XDP program in, read back from the kernel (netlink). */
export function xdpModeOf(ifindex: number): XdpMode | 'none' | 'offload' | 'multi' {
  // struct bpf_xdp_query_opts { size_t sz; __u32 prog_id, drv_prog_id, hw_prog_id, skb_prog_id; __u8 attach_mode; size_t :0 }
  const opts = Buffer.alloc(32);
  opts.writeBigUInt64LE(32n, 0);
  if (native.xdp_query(ifindex, 0, opts) < 0) return 'none';
  return (['none', 'native', 'generic', 'offload', 'multi'] as const)[opts.readUInt8(24)] ?? 'none';
}

/** The mode of our TC program on an interface: tcx when a pinned link holds it, cls_bpf when our filter does. */
export function tcModeOf(ifindex: number, point: 'tc-egress' | 'tc-ingress', pinPath?: string): TcMode | 'none' {
  if (pinPath && existsSync(pinPath)) return 'tcx';
  return tcFilterPresent(ifindex, point) ? 'cls_bpf' : 'none';
}

/** The ifindex a pinned link is attached to: 0 when it is defunct, undefined when the pin cannot be opened. */
export function pinnedLinkIfindex(pinPath: string): number | undefined {
  const linkFd = native.obj_get(pinPath);
  if (linkFd < 0) return undefined;
  try {
    return linkIfindex(linkFd);
  } finally {
    native.close(linkFd);
  }
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
