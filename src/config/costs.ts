// Default per-packet CPU costs. docs/config.md ("CPU costs") gives the full argument.
//
// Paper IV-A: the cost of a packet depends on its source and destination (Table I), the DomU that
// sends a DomU->DomU packet pays for all of it, and DomU<->Dom0 traffic is always charged to the DomU.
//
// Table I (Dom0 CPU under saturating TCP): DomU->Dom0 66.43 %, DomU1->DomU2 85.49 %,
// external->DomU 1.79 %. We read those percentages as relative per-packet weights, rounded to
// integers so the XDP data plane can accumulate costs without floating point:
//   vm_host 66, vm_vm 85, ext_vm 2.
// Not in the table:
//   ext_ext 1: the plane-separated fast path (receive, FIB lookup, redirect) does the receive half
//     of external->DomU but replaces the copy into a guest with a driver transmit: the cheapest
//     path, and the unit of the scale (cpu_capacity = fast-path packets per second at full CPU).
//   vm_ext 60: the guest->host copy that dominates DomU->Dom0 (66), minus the host's TCP receive
//     and socket copy that a forwarded packet skips.

import type { CostTable } from './types.js';

export const defaultCosts: CostTable = Object.freeze({
  extExt: 1,
  extVm: 2,
  vmExt: 60,
  vmVm: 85,
  vmHost: 66,
});

/** Largest per-packet cost accepted: far above any Table I ratio, and small enough that a u64
 *  per-period cost sum in the data plane cannot overflow at any packet rate. */
export const MAX_PACKET_COST = 1_000_000;
