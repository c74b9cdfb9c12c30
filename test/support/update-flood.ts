// Test support, run as a script in a hostile router's namespace: an authenticated router that
// floods the host with update records. Each round connects with the router's own key, sends
// Hello, then RouteBatches without waiting for Acks: first a few large ones that take the
// network over its route quota, then many small ones, beyond the session's record bucket. It
// reconnects when the host closes the session, until the time is up, and prints one JSON line:
// the Acks by error code and the sessions' close reasons.
//   node update-flood.js HOST PORT HOST_PUBLIC_KEY PRIVATE_KEY_FILE SECONDS
import { readFileSync } from 'node:fs';
import { connectSecure, type SecureChannel } from '../../src/crypto/index.js';
import { PROTOCOL_VERSION, decodeAck, encodeHello, encodeRouteBatch, routeChangesFromLists, type WireRoute } from '../../src/wire/index.js';

export interface FloodReport {
  sessions: number;
  /** Handshakes the host refused (its per-key or per-source bucket, or the connection refused). */
  connectFailures: number;
  messagesSent: number;
  acks: Record<string, number>;
  closeReasons: Record<string, number>;
}

/** `count` via-VM /32 routes on 10.200/16 from host number `from`: the router's own "default route to the VM". */
function viaVm(from: number, count: number): WireRoute[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return { prefix: `10.200.${(n >> 8) & 255}.${n & 255}/32`, kind: 'via-vm', gateway: null, interface: null };
  });
}

async function round(channel: SecureChannel, report: FloodReport, deadline: number): Promise<void> {
  let sequence = 1;
  const acks = (async () => {
    for await (const payload of channel.messages()) {
      const ack = decodeAck(payload);
      const code = ack.ok ? 'ok' : ack.errorCode;
      report.acks[code] = (report.acks[code] ?? 0) + 1;
    }
  })().catch(() => undefined);
  const send = (payload: Buffer): Promise<void> => { report.messagesSent++; return channel.send(payload); };
  try {
    await send(encodeHello({ version: PROTOCOL_VERSION, clientName: 'flood' }));
    // 65,536 routes in 8 batches: over a quota the test set lower.
    for (let b = 0; b < 8 && !channel.closed; b++) {
      await send(encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(viaVm(b * 8192, 8192), []) }));
      await new Promise((r) => setImmediate(r));
    }
    // Over the record bucket: small batches as fast as the socket takes them. Every 64 a turn of
    // the event loop, to read the host's Acks: a flood that never reads is held by TCP alone
    // (the host's replies back up, so its reading of this session stops).
    while (!channel.closed && Date.now() < deadline) {
      await send(encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(viaVm(sequence & 0xffff, 1), []) }));
      if (sequence % 64 === 0) await new Promise((r) => setImmediate(r));
    }
  } catch { /* the host closed the session */ }
  if (!channel.closed) channel.close();
  await acks;
  const reason = channel.closeReason ?? 'unknown';
  report.closeReasons[reason] = (report.closeReasons[reason] ?? 0) + 1;
}

export async function flood(options: { host: string; port: number; hostPublicKey: string; privateKey: string; seconds: number }): Promise<FloodReport> {
  const report: FloodReport = { sessions: 0, connectFailures: 0, messagesSent: 0, acks: {}, closeReasons: {} };
  const deadline = Date.now() + options.seconds * 1000;
  while (Date.now() < deadline) {
    let channel: SecureChannel;
    try {
      channel = await connectSecure({ host: options.host, port: options.port, hostPublicKey: options.hostPublicKey, privateKey: options.privateKey });
    } catch {
      report.connectFailures++;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    report.sessions++;
    await round(channel, report, deadline);
  }
  return report;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [host, port, hostPublicKey, keyFile, seconds] = process.argv.slice(2);
  const report = await flood({ host: host!, port: Number(port), hostPublicKey: hostPublicKey!, privateKey: readFileSync(keyFile!, 'utf8').trim(), seconds: Number(seconds) });
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}
