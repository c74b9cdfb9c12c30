// The Debian packages as operators install them. `make package-debs` builds both (lintian must
// find no error); each machine of a lab (the host, each virtual router) gets a root of its own
// (test/support/overlay-root.ts: this machine's / under an overlay in a private mount namespace,
// so that its /usr, /etc and dpkg database never change), where dpkg -i installs the package and
// the host daemon and the routers' clients run from the installed files only (chroot, a clean
// PATH: no checkout anywhere), as the systemd units say. Then: routes flow, the fast path
// forwards, an upgrade keeps the keys, the configuration and the pinned data plane, and
// dpkg -r / --purge leave nothing behind. Machines without Node.js 20 or BPF are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUp, labDown, uniquePrefix, type LabTopology } from '../../src/lab/index.js';
import { OverlayRoot } from '../support/overlay-root.js';
import { inNs, ping, routerIpv4Forwarded, sleep, stopProcess } from '../support/lab.js';
import { margin } from '../support/timing.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const HOST_DEB = join(REPO, 'build', `xnetmon_${VERSION}_amd64.deb`);
const CLIENT_DEB = join(REPO, 'build', `xnetmon-client_${VERSION}_amd64.deb`);
/** The pinned data plane's bpffs in the host's root: outside /sys, which `ip netns exec` remounts. */
const PIN_DIR = '/run/xnetmon-pins';
/** Paths of a root that are not the package's: dpkg's own records, and what the test writes. */
const NOT_THE_PACKAGES = ['var/lib/dpkg', 'var/log', 'var/cache', 'tmp', 'run'];

const prefix = uniquePrefix('xp');
let topo: LabTopology | undefined;
let host: OverlayRoot | undefined;
const routers = new Map<number, OverlayRoot>();
const roots: OverlayRoot[] = [];
let daemon: ChildProcess | undefined;
const clients: ChildProcess[] = [];
let daemonLog = '';

async function newRoot(options: { sys?: boolean } = {}): Promise<OverlayRoot> {
  const root = await OverlayRoot.create(options);
  roots.push(root);
  return root;
}

/** Polls `probe` (a throw counts as not yet: the daemon's socket may not be there) until it holds. */
async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + margin(timeoutMs);
  let last = '';
  for (;;) {
    try {
      const value = probe();
      if (value) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what} (${last}); log: ${daemonLog.slice(-2000)}`);
    await sleep(200);
  }
}

/** `Key=` of a unit file (its first occurrence). */
function unitLine(unit: string, key: string): string {
  const line = unit.split('\n').find((l) => l.startsWith(`${key}=`));
  assert.ok(line, `the unit has ${key}=`);
  return line.slice(key.length + 1);
}

/** Starts the service as its installed unit says (ExecStartPre, ExecStart, RuntimeDirectory), in `netns`. */
function startUnit(root: OverlayRoot, unitName: string, netns: string): ChildProcess {
  const unit = readFileSync(root.path(`/lib/systemd/system/${unitName}`), 'utf8');
  const pre = unit.includes('ExecStartPre=') ? `${unitLine(unit, 'ExecStartPre')} && ` : '';
  const runtime = unit.includes('RuntimeDirectory=')
    ? `mkdir -p -m 0700 /run/${unitLine(unit, 'RuntimeDirectory')} && `
    : '';
  const child = root.spawn(['sh', '-c', `${runtime}${pre}exec ${unitLine(unit, 'ExecStart')}`], netns);
  child.stdout?.on('data', (d: Buffer) => {
    daemonLog += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    daemonLog += d.toString();
  });
  return child;
}

function installedBy(root: OverlayRoot, name: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${Status} is dpkg-query's format field, not JavaScript's
  return /install ok installed/.test(root.run(['dpkg-query', '-W', '-f=${Status}', name]).stdout);
}

/** Processes whose command line names an installed package's files. */
function packageProcesses(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/\/usr\/lib\/xnetmon(-client)?\//.test(cmd) || /\/usr\/bin\/xnetmon/.test(cmd)) out.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

const hostNs = () => topo!.host.ns;
const xnetmonJson = <T>(args: readonly string[]): T => JSON.parse(host!.must(['xnetmon', ...args, '--json'])) as T;
const routes = (network: string) => xnetmonJson<{ routes: { prefix: string }[] }>(['routes', network]).routes;

before(async () => {
  // The packages of the current build (make build ran before the tests).
  execFileSync('make', ['--no-print-directory', '-s', 'package-debs'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  topo = labUp({
    prefix,
    networks: [
      { id: 1, name: 'blue' },
      { id: 2, name: 'green' },
    ],
  });
  host = await newRoot();
  host.mountNs(['mkdir', '-p', `${host.base}/root${PIN_DIR}`]);
  host.mountNs(['mount', '-t', 'bpf', 'bpf', `${host.base}/root${PIN_DIR}`]);
  copyFileSync(HOST_DEB, host.path('/tmp/xnetmon.deb'));
  for (const net of topo.networks) {
    const root = await newRoot();
    routers.set(net.id, root);
    copyFileSync(CLIENT_DEB, root.path('/tmp/xnetmon-client.deb'));
  }
});

after(async () => {
  for (const c of clients) await stopProcess(c, 'SIGKILL');
  await stopProcess(daemon, 'SIGKILL');
  for (const root of roots) await root.close();
  labDown(prefix);
});

test('both packages: sizes, and only what each needs (the client has no libbpf binding, BPF object or lab)', (t) => {
  const listing = (deb: string) => execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
  const hostFiles = listing(HOST_DEB);
  const clientFiles = listing(CLIENT_DEB);
  t.diagnostic(`xnetmon ${statSync(HOST_DEB).size} bytes, xnetmon-client ${statSync(CLIENT_DEB).size} bytes`);
  for (const path of [
    './usr/bin/xnetmon',
    './usr/lib/xnetmon/build/xnetmon.bpf.o',
    './lib/systemd/system/xnetmon.service',
    './etc/xnetmon/xnetmon.yaml',
    './usr/share/doc/xnetmon/copyright',
    './usr/share/doc/xnetmon/changelog.gz',
    'node_modules/koffi/',
  ]) {
    assert.ok(hostFiles.includes(path), `the host package has ${path}`);
  }
  for (const path of [
    './usr/bin/xnetmon-client',
    './lib/systemd/system/xnetmon-client.service',
    './etc/xnetmon/client.yaml',
    './usr/share/doc/xnetmon-client/copyright',
  ]) {
    assert.ok(clientFiles.includes(path), `the client package has ${path}`);
  }
  for (const absent of [
    'koffi',
    '.bpf.o',
    'dist/src/loader',
    'dist/src/dataplane',
    'dist/src/lab',
    'dist/src/manager',
    'prom-client',
    'dist/bench',
  ]) {
    assert.ok(!clientFiles.includes(absent), `the client package has no ${absent}`);
  }
});

test('a machine without Node.js 20 or without BPF is refused with one line, and nothing changes', async () => {
  // Debian 12's own nodejs is 18: /usr/bin/node answers v18.19.0 in this root.
  const oldNode = await newRoot();
  copyFileSync(HOST_DEB, oldNode.path('/tmp/xnetmon.deb'));
  writeFileSync(oldNode.path('/tmp/node18'), '#!/bin/sh\necho v18.19.0\n', { mode: 0o755 });
  oldNode.mountNs(['mount', '--bind', `${oldNode.base}/root/tmp/node18`, `${oldNode.base}/root/usr/bin/node`]);
  const refused = oldNode.run(['dpkg', '-i', '/tmp/xnetmon.deb']);
  assert.notEqual(refused.code, 0);
  assert.match(
    refused.stderr,
    /^xnetmon: needs Node\.js 20 or later, and \/usr\/bin\/node is v18\.19\.0: install nodejs \(>= 20\) first$/m,
  );
  assert.equal(installedBy(oldNode, 'xnetmon'), false);
  assert.deepEqual(oldNode.leftovers(NOT_THE_PACKAGES), []);

  // No BPF file system (/sys/fs/bpf absent).
  const noBpf = await newRoot({ sys: false });
  copyFileSync(HOST_DEB, noBpf.path('/tmp/xnetmon.deb'));
  const noBpfResult = noBpf.run(['dpkg', '-i', '/tmp/xnetmon.deb']);
  assert.notEqual(noBpfResult.code, 0);
  assert.match(noBpfResult.stderr, /^xnetmon: needs BPF support, and there is no \/sys\/fs\/bpf/m);
  assert.equal(installedBy(noBpf, 'xnetmon'), false);
  assert.deepEqual(noBpf.leftovers(NOT_THE_PACKAGES), []);

  // A kernel under the floor: the preinst itself, with uname answering 5.10.
  noBpf.must(['dpkg-deb', '-e', '/tmp/xnetmon.deb', '/tmp/control']);
  writeFileSync(noBpf.path('/tmp/uname'), '#!/bin/sh\necho 5.10.0-28-amd64\n', { mode: 0o755 });
  const oldKernel = noBpf.run(['/tmp/control/preinst', 'install'], {
    env: { PATH: '/tmp:/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  assert.notEqual(oldKernel.code, 0);
  assert.equal(
    oldKernel.stderr.trim(),
    'xnetmon: needs Linux 5.13 or later for its BPF data plane, and this kernel is 5.10.0-28-amd64',
  );
});

test('install: keys made (0600), nothing started, --version names the BPF object, the units verify', () => {
  const installed = host!.must(['dpkg', '-i', '/tmp/xnetmon.deb'], { netns: hostNs() });
  assert.match(installed, /created \/etc\/xnetmon\/host\.key/);
  for (const router of routers.values()) router.must(['dpkg', '-i', '/tmp/xnetmon-client.deb']);
  assert.equal(statSync(host!.path('/etc/xnetmon/host.key')).mode & 0o777, 0o600);
  for (const router of routers.values())
    assert.equal(statSync(router.path('/etc/xnetmon/router.key')).mode & 0o777, 0o600);
  assert.deepEqual(packageProcesses(), [], 'no daemon or client started by the install');

  const buildId = createHash('sha256')
    .update(readFileSync(host!.path('/usr/lib/xnetmon/build/xnetmon.bpf.o')))
    .digest('hex')
    .slice(0, 16);
  assert.equal(host!.must(['xnetmon', '--version']).trim(), `xnetmon ${VERSION} (bpf build id ${buildId})`);
  assert.equal(
    routers.get(1)!.must(['xnetmon-client', '--version']).trim(),
    `xnetmon-client ${VERSION} (bpf build id ${buildId})`,
  );
  assert.equal(existsSync(routers.get(1)!.path('/usr/lib/xnetmon')), false, 'the router has no host package');

  if (host!.run(['sh', '-c', 'command -v systemd-analyze']).code === 0) {
    for (const [root, unit] of [
      [host!, 'xnetmon.service'],
      [routers.get(1)!, 'xnetmon-client.service'],
    ] as const) {
      const verify = root.run(['systemd-analyze', 'verify', `/lib/systemd/system/${unit}`]);
      assert.equal(verify.code, 0, `systemd-analyze verify ${unit}: ${verify.stderr}`);
      assert.equal(
        verify.stderr
          .split('\n')
          .filter((l) => l.includes(unit))
          .join('\n'),
        '',
        `no complaint about ${unit}`,
      );
    }
  }
});

test('the installed daemon and clients: routes flow over the secure channel, the fast path forwards', async () => {
  const routerKeys = new Map(
    [...routers].map(([id, root]) => [id, readFileSync(root.path('/etc/xnetmon/router.pub'), 'utf8').trim()]),
  );
  const hostKey = readFileSync(host!.path('/etc/xnetmon/host.pub'), 'utf8').trim();
  // What an operator writes after installing (docs/operations.md): the host's configuration with
  // each router's public key, each router's client.yaml with the host's.
  writeFileSync(
    host!.path('/etc/xnetmon/xnetmon.yaml'),
    [
      'host:',
      `  pin_dir: ${PIN_DIR}`,
      '  links:',
      ...topo!.host.links.map((l) => `    - { name: ${l.name}, capacity_mbps: 1000 }`),
      '  listen: "0.0.0.0:7400"',
      '  host_private_key_file: /etc/xnetmon/host.key',
      'networks:',
      ...topo!.networks.flatMap((n) => [
        `  - id: ${n.id}`,
        `    name: ${n.name}`,
        `    reserve: { cpu: 0.3, fib: 0.3, links: { ${topo!.host.links.map((l) => `${l.name}: 0.3`).join(', ')} } }`,
        `    routers: [{ vif: "${n.router.interfaces[0].vif}", client_public_key: "${routerKeys.get(n.id)}" }]`,
        '    attachments:',
        ...n.router.interfaces.map(
          (i) => `      - { interface: ${i.link}, vlan: 0, mac: "${i.mac}", vif: "${i.vif}" }`,
        ),
      ]),
      '',
    ].join('\n'),
  );
  for (const net of topo!.networks) {
    writeFileSync(
      routers.get(net.id)!.path('/etc/xnetmon/client.yaml'),
      [
        `host: "10.${net.id}.0.254:7400"`,
        `host_public_key: "${hostKey}"`,
        'private_key_file: /etc/xnetmon/router.key',
        `interfaces: [${net.router.interfaces.map((i) => i.name).join(', ')}]`,
        '',
      ].join('\n'),
    );
  }
  daemon = startUnit(host!, 'xnetmon.service', hostNs());
  await until('the daemon up', () => /"msg":"xnetmon up"/.test(daemonLog));
  for (const net of topo!.networks)
    clients.push(startUnit(routers.get(net.id)!, 'xnetmon-client.service', net.router.ns));
  for (const net of topo!.networks) {
    await until(`${net.name}'s routes in the host`, () =>
      routes(net.name).some((r) => r.prefix === `10.${net.id}.1.0/24`),
    );
  }
  // The routers resolve their external machines; the host learns the MACs from their neighbours.
  for (const net of topo!.networks)
    for (const ext of net.externals)
      routers.get(net.id)!.run(['ping', '-c', '1', '-W', '1', ext.iface.address], { netns: net.router.ns });
  const blue = topo!.networks[0];
  const [ext0, ext1] = blue.externals;
  await until('the host forwards blue ext0 -> ext1', () => ping(ext0.ns, ext1.iface.address, 1) === 1);
  const before = routerIpv4Forwarded(blue);
  assert.equal(ping(ext0.ns, ext1.iface.address, 20, 0.02), 20);
  assert.equal(
    routerIpv4Forwarded(blue) - before,
    0,
    'the virtual router forwarded none of the 40 packets: the host did',
  );
});

test('upgrade: keys, configuration and the pinned data plane stay; forwarding goes on; the daemon re-adopts', async () => {
  const key = readFileSync(host!.path('/etc/xnetmon/host.key'), 'utf8');
  const config = readFileSync(host!.path('/etc/xnetmon/xnetmon.yaml'), 'utf8');
  await stopProcess(daemon, 'SIGTERM');
  host!.must(['dpkg', '-i', '/tmp/xnetmon.deb'], { netns: hostNs() });
  assert.equal(readFileSync(host!.path('/etc/xnetmon/host.key'), 'utf8'), key);
  assert.equal(readFileSync(host!.path('/etc/xnetmon/xnetmon.yaml'), 'utf8'), config);
  assert.ok(
    readdirSync(host!.path(PIN_DIR)).some((e) => e.startsWith('xnm_')),
    'the pins stay',
  );
  const [ext0, ext1] = topo!.networks[0].externals;
  assert.equal(ping(ext0.ns, ext1.iface.address, 5, 0.02), 5, 'forwarding goes on without the daemon');
  daemonLog = '';
  daemon = startUnit(host!, 'xnetmon.service', hostNs());
  await until(
    'the daemon re-adopting its pins',
    () => /re-adopted from pins/.test(daemonLog) && /"msg":"xnetmon up"/.test(daemonLog),
  );
});

test('dpkg -r detaches the data plane and leaves only the configuration; --purge leaves nothing', async () => {
  for (const c of clients) await stopProcess(c, 'SIGTERM');
  await stopProcess(daemon, 'SIGTERM');
  host!.must(['dpkg', '-r', 'xnetmon'], { netns: hostNs() });
  assert.equal(installedBy(host!, 'xnetmon'), false);
  assert.deepEqual(
    readdirSync(host!.path(PIN_DIR)).filter((e) => e.startsWith('xnm_')),
    [],
    'the pins are gone',
  );
  for (const link of topo!.host.links) {
    assert.doesNotMatch(
      inNs(hostNs(), ['ip', 'link', 'show', 'dev', link.name]),
      /xdp/,
      `no XDP program left on ${link.name}`,
    );
  }
  assert.deepEqual(
    host!.leftovers(NOT_THE_PACKAGES).sort(),
    ['etc/xnetmon/'],
    'only the configuration and keys are left',
  );
  host!.must(['dpkg', '--purge', 'xnetmon']);
  assert.deepEqual(host!.leftovers(NOT_THE_PACKAGES), []);
  for (const router of routers.values()) {
    router.must(['dpkg', '--purge', 'xnetmon-client']);
    assert.deepEqual(router.leftovers(NOT_THE_PACKAGES), []);
  }
});
