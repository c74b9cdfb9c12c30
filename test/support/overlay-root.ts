// A machine's root for package tests: this machine's / seen through an overlay whose upper
// layer is a tmpfs, in a mount namespace of its own held by one process. dpkg installs there,
// and programs run there (chroot), while this machine's /usr, /etc and dpkg database never
// change: when the holder exits, the namespace, the overlay and every write are gone.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment of every command run in a root: no checkout, no NODE_PATH, on any path. */
const CLEAN_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/root',
};

const SETUP = `
set -e
base=$1
mount -t tmpfs -o mode=0755 xnetmon-root "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
for dir in proc dev sys run/netns; do mount --rbind "/$dir" "$base/root/$dir"; done
# A bpffs of this root's own, so that nothing here reads or removes this machine's pins.
mount -t bpf bpf "$base/root/sys/fs/bpf"
if [ "$2" = no-sys ]; then umount -R "$base/root/sys"; fi
echo ready
# Lives as long as the test holds its stdin open: a killed test leaves no namespace behind.
exec cat > /dev/null
`;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class OverlayRoot {
  readonly base: string;
  private readonly holder: ChildProcess;

  private constructor(base: string, holder: ChildProcess) {
    this.base = base;
    this.holder = holder;
  }

  /** `sys: false` leaves /sys unmounted in the root (a machine without BPF file system). */
  static async create(options: { sys?: boolean } = {}): Promise<OverlayRoot> {
    const base = mkdtempSync(join(tmpdir(), 'xnetmon-root-'));
    const holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        SETUP,
        'sh',
        base,
        options.sys === false ? 'no-sys' : 'sys',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const root = new OverlayRoot(base, holder);
    await new Promise<void>((resolve, reject) => {
      let err = '';
      holder.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      holder.stdout?.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`overlay root setup exited (${code}): ${err}`)));
    });
    return root;
  }

  /** A path of the root as this process sees it (through the holder's mount namespace). */
  path(p: string): string {
    return `/proc/${this.holder.pid}/root${this.base}/root${p}`;
  }

  private argv(args: readonly string[], netns?: string): string[] {
    return [
      '-t',
      String(this.holder.pid),
      '-m',
      '--',
      'chroot',
      `${this.base}/root`,
      ...(netns ? ['ip', 'netns', 'exec', netns] : []),
      ...args,
    ];
  }

  /** Runs a command in the root (and network namespace `netns`), never throwing. */
  run(args: readonly string[], options: { netns?: string; env?: Record<string, string> } = {}): CommandResult {
    try {
      const stdout = execFileSync('nsenter', this.argv(args, options.netns), {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...CLEAN_ENV, ...options.env },
      });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { status?: number; stdout?: string; stderr?: string };
      return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  /** Runs a command in the root; throws with its output when it fails. */
  must(args: readonly string[], options: { netns?: string; env?: Record<string, string> } = {}): string {
    const r = this.run(args, options);
    if (r.code !== 0) throw new Error(`${args.join(' ')} exited with ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  spawn(args: readonly string[], netns?: string): ChildProcess {
    return spawn('nsenter', this.argv(args, netns), { stdio: ['ignore', 'pipe', 'pipe'], env: CLEAN_ENV });
  }

  /** Runs a command in the holder's mount namespace, outside the chroot (mounts over the root). */
  mountNs(args: readonly string[]): string {
    return execFileSync('nsenter', ['-t', String(this.holder.pid), '-m', '--', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * What the root holds that this machine's / does not: files, links and whiteouts (a deleted
   * file of the machine) in the upper layer, and directories the machine has not, outside `ignore`.
   */
  leftovers(ignore: readonly string[]): string[] {
    const upper = `/proc/${this.holder.pid}/root${this.base}/upper`;
    const out: string[] = [];
    const walk = (rel: string): void => {
      for (const name of readdirSync(join(upper, rel))) {
        const path = rel ? `${rel}/${name}` : name;
        if (ignore.some((i) => path === i || path.startsWith(`${i}/`))) continue;
        const stat = lstatSync(join(upper, path));
        if (stat.isDirectory()) {
          if (!existsSync(`/${path}`)) out.push(`${path}/`);
          else walk(path);
        } else {
          out.push(stat.isCharacterDevice() ? `${path} (deleted)` : path);
        }
      }
    };
    walk('');
    return out;
  }

  /** Ends the holder: the namespace, the overlay and its tmpfs go with it. */
  async close(): Promise<void> {
    if (this.holder.exitCode === null && this.holder.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.holder.once('exit', () => resolve()));
      this.holder.kill('SIGKILL');
      await exited;
    }
    rmdirSync(this.base);
  }
}
