// Names of the pinned bpf links under <pinDir>/links: one pin per program and interface,
// "<kind>-<escaped interface name>". bpffs refuses names with a dot, so interface names are
// escaped, injectively: "_" becomes "__" and any byte outside [A-Za-z0-9-] becomes "_" and two
// lower-case hex digits ("vif1.0" -> "vif1_2e0", "vif1_0" -> "vif1__0"). Before this encoding
// dots became underscores, so "vif1.0" and "vif1_0" shared one pin and the first program was
// silently detached; migrateLinkPins renames such pins by the interface their link is on.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { detachPinned, ifnameOf, pinnedLinkIfindex } from '../loader/index.js';

export type LinkPinKind = 'xdp' | 'tc';
const KINDS: readonly LinkPinKind[] = ['xdp', 'tc'];

/** The escaped form of an interface name: no dot, and no two names give the same text. */
export function escapePinName(ifname: string): string {
  let out = '';
  for (const byte of Buffer.from(ifname, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (c === '_') out += '__';
    else if (/^[A-Za-z0-9-]$/.test(c)) out += c;
    else out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The interface name back from its escaped form; undefined when the text is no escape's output. */
export function unescapePinName(text: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '_') {
      if (!/^[A-Za-z0-9-]$/.test(c)) return undefined;
      bytes.push(c.charCodeAt(0));
      continue;
    }
    if (text[i + 1] === '_') {
      bytes.push(0x5f);
      i++;
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
    const byte = Number.parseInt(hex, 16);
    // Only bytes that escape would have escaped: one spelling per name.
    if (/^[A-Za-z0-9_-]$/.test(String.fromCharCode(byte))) return undefined;
    bytes.push(byte);
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The file name of the pin of `kind`'s program on `ifname`. */
export function linkPinName(kind: LinkPinKind, ifname: string): string {
  return `${kind}-${escapePinName(ifname)}`;
}

/** The program kind and interface of a pin name, or undefined for a name no current pin has. */
export function parseLinkPinName(name: string): { kind: LinkPinKind; ifname: string } | undefined {
  const dash = name.indexOf('-');
  const kind = name.slice(0, dash) as LinkPinKind;
  if (dash < 0 || !KINDS.includes(kind)) return undefined;
  const ifname = unescapePinName(name.slice(dash + 1));
  return ifname === undefined ? undefined : { kind, ifname };
}

export interface PinMigration {
  /** Pins renamed to the current encoding: [old name, new name]. */
  renamed: [string, string][];
  /** Pins removed: links whose interface is gone, or a second pin for one program and interface. */
  removed: string[];
}

/**
 * Brings the link pins of an earlier version (or any pin whose name does not say the
 * interface its link is on) to the current names, by asking the kernel which interface each
 * link is attached to. A link on no interface (the interface was deleted) is removed.
 */
export function migrateLinkPins(pinDir: string): PinMigration {
  const dir = join(pinDir, 'links');
  const result: PinMigration = { renamed: [], removed: [] };
  if (!existsSync(dir)) return result;
  for (const name of readdirSync(dir).sort()) {
    const dash = name.indexOf('-');
    const kind = name.slice(0, dash) as LinkPinKind;
    if (dash < 0 || !KINDS.includes(kind)) continue; // not ours
    const path = join(dir, name);
    const ifindex = pinnedLinkIfindex(path);
    const ifname = ifindex ? ifnameOf(ifindex) : undefined;
    if (!ifname) {
      detachPinned(path);
      result.removed.push(name);
      continue;
    }
    const wanted = linkPinName(kind, ifname);
    if (wanted === name) continue;
    if (existsSync(join(dir, wanted))) {
      detachPinned(path);
      result.removed.push(name);
    } else {
      renameSync(path, join(dir, wanted));
      result.renamed.push([name, wanted]);
    }
  }
  return result;
}

/** The interfaces that hold a pinned link of ours, by kind (what `links/` says is attached). */
export function pinnedLinks(pinDir: string): { kind: LinkPinKind; ifname: string; name: string }[] {
  const dir = join(pinDir, 'links');
  if (!existsSync(dir)) return [];
  const out: { kind: LinkPinKind; ifname: string; name: string }[] = [];
  for (const name of readdirSync(dir).sort()) {
    const parsed = parseLinkPinName(name);
    if (parsed) out.push({ ...parsed, name });
  }
  return out;
}
