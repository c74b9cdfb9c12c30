// A real Prometheus (Debian's `prometheus`) scraping the daemon in a lab, every second: the
// packets a test sends through blue's fast path are what Prometheus stores and what rate() and
// increase() of xnetmon_packets_total give; and every frame sent is in the totals of
// `xnetmon status`, the forwarded ones under blue, the ones of no network under noNetwork.
// Also runs docs/operations.md's bpftool + jq recipe that prints verdicts by reason name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { uniquePrefix, LAB_METRICS_LISTEN, type LabState } from '../../src/lab/index.js';
import { buildFrame } from '../../src/packet/index.js';
import { readPinnedCounters } from '../../src/dataplane/index.js';
import {
  xnetmon,
  ping,
  startDaemon,
  stopProcess,
  spawnInNs,
  sleep,
  httpGetInNs,
  scrapeMetrics,
} from '../support/lab.js';
import { sendFrames } from '../support/fuzz.js';
import { documentedMetrics, exposedMetrics, metricDrift } from '../support/metrics-doc.js';

const prefix = uniquePrefix('xp');
// Inside the lab's host namespace, where the daemon serves LAB_METRICS_LISTEN (src/lab/config.ts).
const PROMETHEUS = '127.0.0.1:19090';
let lab: LabState | undefined;
let daemon: ChildProcess | undefined;
let prometheus: ChildProcess | undefined;
let prometheusLog = '';
let dir: string | undefined;
let socket: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xnm-prometheus-'));
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: xnetmon',
      `    static_configs: [{ targets: ["${LAB_METRICS_LISTEN}"] }]`,
      '',
    ].join('\n'),
  );
  prometheus = spawnInNs(lab.topology.host.ns, [
    'prometheus',
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=${PROMETHEUS}`,
    '--log.level=warn',
  ]);
  prometheus.stdout?.on('data', (d: Buffer) => {
    prometheusLog += d.toString();
  });
  prometheus.stderr?.on('data', (d: Buffer) => {
    prometheusLog += d.toString();
  });
});

after(async () => {
  // Everything goes, in reverse, whatever failed above.
  await stopProcess(prometheus, 'SIGKILL');
  await stopProcess(daemon, 'SIGKILL');
  if (lab) xnetmon(['lab', 'down', '--prefix', prefix]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A GET from inside the host namespace (the daemon and Prometheus listen on its loopback). */
function get(url: string): string {
  return httpGetInNs(lab!.topology.host.ns, url);
}

/** An instant query, from inside the host namespace (Prometheus listens on its loopback). */
function query(expr: string, at?: number): Sample[] {
  const url = `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(expr)}${at ? `&time=${at}` : ''}`;
  const body = JSON.parse(get(url)) as { status: string; data: { result: Sample[] }; error?: string };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  return body.data.result;
}

const value = (expr: string, at?: number): number => {
  const result = query(expr, at);
  assert.equal(result.length, 1, `${expr} has one series: ${JSON.stringify(result)}`);
  return Number(result[0].value[1]);
};

const FORWARDED = 'xnetmon_packets_total{job="xnetmon",network="blue",reason="forward"}';

/** Waits until Prometheus has a sample of the daemon scraped after `after` (unix seconds). */
async function scrapedAfter(afterS: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const result = query(`timestamp(${FORWARDED})`);
      if (result.length === 1 && Number(result[0].value[1]) > afterS) return;
    } catch {
      /* Prometheus still starting */
    }
    if (prometheus?.exitCode !== null) break;
    await sleep(200);
  }
  assert.fail(`no scrape after ${afterS}: ${prometheusLog}`);
}

type Status = { networks: { name: string; forwarded: number }[]; noNetwork: Record<string, number> };
const status = (): Status => JSON.parse(xnetmon(['status', '--json', '--socket', socket])) as Status;
const noNetworkTotal = (s: Status): number => Object.values(s.noNetwork).reduce((a, v) => a + v, 0);

test('Prometheus scrapes the daemon: rate() and increase() of the packet counter match the pings sent', async () => {
  const [blue] = lab!.topology.networks;
  const [b0, b1] = blue.externals;
  ping(b0.ns, b1.iface.address, 3, 0.05); // ARP resolved before counting
  await sleep(300);
  const t0 = Date.now() / 1000;
  await scrapedAfter(t0);
  const at0 = Date.now() / 1000;
  const before = value(FORWARDED, at0);
  const statusBefore = status();

  const sent = 100;
  const replies = ping(b0.ns, b1.iface.address, sent, 0.02);
  assert.equal(replies, sent, 'every ping answered');
  const expected = 2 * sent; // the requests and the replies, both forwarded in the fast path
  await sleep(500);
  const t1 = Date.now() / 1000;
  await scrapedAfter(t1);
  const at1 = Date.now() / 1000;

  const after = value(FORWARDED, at1);
  assert.ok(
    Math.abs(after - before - expected) <= 2,
    `Prometheus stored ${after - before} more forwarded packets; ${expected} were sent`,
  );
  const statusAfter = status();
  assert.ok(
    Math.abs(statusAfter.networks[0].forwarded - statusBefore.networks[0].forwarded - expected) <= 2,
    'status agrees',
  );
  assert.equal(statusAfter.networks[0].forwarded, after, 'status and /metrics show the same counter');

  // rate() and increase() over a window that holds the whole send: PromQL extrapolates to the
  // window's edges, so within 25 %.
  const window = Math.ceil(at1 - at0) + 2;
  const increase = value(`increase(${FORWARDED}[${window}s])`, at1);
  assert.ok(
    Math.abs(increase - expected) <= expected * 0.25,
    `increase() ${increase.toFixed(1)} against ${expected} sent`,
  );
  const rate = value(`rate(${FORWARDED}[${window}s])`, at1);
  assert.ok(
    Math.abs(rate * window - expected) <= expected * 0.25,
    `rate() ${rate.toFixed(2)}/s over ${window} s against ${expected} sent`,
  );
  assert.equal(value('up{job="xnetmon"}'), 1);
});

test('frames of no network are in status\' noNetwork totals, and in Prometheus under network="(none)"', async () => {
  const [blue] = lab!.topology.networks;
  const ext = blue.externals[0];
  // To a MAC that is no router's: the data plane classifies it to no network and leaves it to the host.
  const frame = buildFrame({
    src: ext.iface.mac,
    dst: '02:00:aa:00:00:01',
    ipv4: { src: ext.iface.address, dst: '192.0.2.1', udp: { sport: 9, dport: 9 }, payload: 64 },
  });
  const sent = 50;
  const before = status();
  sendFrames(
    ext.ns,
    ext.iface.name,
    Array.from({ length: sent }, () => frame),
    dir!,
    'no-network',
  );
  await sleep(500);
  const after = status();
  const added = noNetworkTotal(after) - noNetworkTotal(before);
  // Links also carry the kernel's own IPv6 neighbour discovery and MLD: a few more, never fewer.
  assert.ok(added >= sent && added <= sent + 20, `${added} more frames of no network in status; ${sent} were sent`);
  assert.equal(after.networks[0].forwarded, before.networks[0].forwarded, "none of them counted as blue's");
  const t = Date.now() / 1000;
  await scrapedAfter(t);
  const stored = value('sum(xnetmon_packets_total{job="xnetmon",network="(none)"})');
  assert.ok(
    stored >= noNetworkTotal(after),
    `Prometheus has ${stored} frames of no network, status ${noNetworkTotal(after)}`,
  );
});

test("docs/operations.md's bpftool recipe prints the verdicts by reason name, as the data plane counts them", () => {
  const docs = readFileSync(
    join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'operations.md'),
    'utf8',
  );
  const recipe = /<!-- recipe: verdicts-by-reason[^>]*-->\n```sh\n([\s\S]*?)```/.exec(docs)?.[1];
  assert.ok(recipe, 'the recipe is in docs/operations.md');
  // The counters only grow: read before and after the recipe, and its figures must lie between.
  const before = new Map(readPinnedCounters(lab!.pinDir, [0, 1]).map((c) => [c.netId, c.verdicts]));
  const out = execFileSync('bash', ['-euo', 'pipefail', '-c', recipe], {
    encoding: 'utf8',
    env: { ...process.env, PIN: lab!.pinDir },
  });
  const byNet = new Map(
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { net: number; verdicts: Record<string, number> })
      .map((l) => [l.net, l.verdicts]),
  );
  const after = readPinnedCounters(lab!.pinDir, [0, 1]);
  for (const c of after) {
    const shown = byNet.get(c.netId) ?? {};
    const earlier = before.get(c.netId);
    for (const [reason, count] of Object.entries(c.verdicts)) {
      if (count === 0n) continue;
      const low = Number(earlier?.[reason as keyof typeof c.verdicts] ?? 0n);
      const value = shown[reason] ?? 0;
      assert.ok(
        value >= low && value <= Number(count),
        `net ${c.netId} ${reason}: recipe ${value}, data plane ${low} before and ${count} after`,
      );
    }
  }
  assert.ok((byNet.get(1)?.forward ?? 0) >= 200, "blue's forwarded pings are there by name");
});

test('docs/operations.md lists every metric the running daemon exposes, with its type and labels', () => {
  const exposed = exposedMetrics(scrapeMetrics(lab!.topology.host.ns));
  assert.ok(exposed.get('xnetmon_packets_total')?.samples, 'the daemon serves its packet counters');
  assert.deepEqual(metricDrift(documentedMetrics(), exposed), []);
});
