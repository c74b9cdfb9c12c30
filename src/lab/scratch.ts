// Run commands, and create kernel objects (dummy links, namespaces)
// under a unique name prefix that cleanup() removes, even after a failure.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function sh(cmd: string, args: readonly string[], options: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (options.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** A short unique prefix: interface names have at most 15 characters. */
export function uniquePrefix(tag: string): string {
  return `${tag}${randomBytes(2).toString('hex')}`;
}

export class Scratch {
  readonly prefix: string;
  private readonly links: string[] = [];

  constructor(tag: string) {
    this.prefix = uniquePrefix(tag);
  }

  /** An interface in the current namespace (one end of a veth pair: this kernel has no dummy driver); returns its name. */
  dummy(suffix: string): string {
    const name = `${this.prefix}${suffix}`;
    sh('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}x`]);
    this.links.push(name);
    sh('ip', ['link', 'set', name, 'up']);
    sh('ip', ['link', 'set', `${name}x`, 'up']);
    return name;
  }

  cleanup(): void {
    for (const name of this.links.splice(0)) sh('ip', ['link', 'del', name], { allowFail: true });
  }
}
