// Test support, run as a script in a hostile router's namespace: an authenticated router that
// floods the host with update records. Each round connects with the router's own key, sends
// Hello, then RouteBatches without waiting for Acks: first a few large ones that take the
// network over its route quota, then many small ones, beyond the session's record bucket. It
// reconnects when the host closes the session, until the time is up, and prints one JSON line:
// the Acks by error code and the sessions' close reasons.
//   node update-flood.js HOST PORT HOST_PUBLIC_KEY PRIVATE_KEY_FILE SECONDS
import { readFileSync } from 'node:fs';
import { connectSecure, type SecureChannel } from '../../src/crypto/index.js';
import {
  PROTOCOL_VERSION,
  decodeAck,
  encodeHello,
  encodeRouteBatch,
  routeChangesFromLists,
  type WireRoute,
} from '../../src/wire/index.js';

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

/** The records a round sends, encoded before it connects (so that the flood runs at the socket's speed). */
function prepare(): { large: Buffer[]; small: Buffer[] } {
  let sequence = 1;
  // 65,536 routes in 8 batches: over a quota the test set lower.
  const large = Array.from({ length: 8 }, (_, b) =>
    encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(viaVm(b * 8192, 8192), []) }),
  );
  // Then small batches, more than the session's burst of records.
  const small = Array.from({ length: 15_000 }, (_, i) =>
    encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(viaVm(i & 0xffff, 1), []) }),
  );
  return { large, small };
}

async function round(
  channel: SecureChannel,
  records: { large: Buffer[]; small: Buffer[] },
  report: FloodReport,
  deadline: number,
): Promise<void> {
  const acks = (async () => {
    for await (const payload of channel.messages()) {
      const ack = decodeAck(payload);
      const code = ack.ok ? 'ok' : ack.errorCode;
      report.acks[code] = (report.acks[code] ?? 0) + 1;
    }
  })().catch(() => undefined);
  const send = (payload: Buffer): Promise<void> => {
    report.messagesSent++;
    return channel.send(payload);
  };
  try {
    await send(encodeHello({ version: PROTOCOL_VERSION, clientName: 'flood' }));
    // Every 64 records a turn of the event loop, to read the host's Acks: a flood that never reads
    // is held by TCP alone (the host's replies back up, so its reading of this session stops).
    let sent = 0;
    for (const payload of [...records.large, ...records.small]) {
      if (channel.closed || Date.now() >= deadline) break;
      await send(payload);
      if (++sent % 64 === 0 || payload.length > 1000) await new Promise((r) => setImmediate(r));
    }
  } catch {
    /* the host closed the session */
  }
  // Wait for what the host still answers (or its closing of the session), then go.
  for (let i = 0; i < 20 && !channel.closed; i++) await new Promise((r) => setTimeout(r, 50));
  if (!channel.closed) channel.close();
  await acks;
  const reason = channel.closeReason ?? 'unknown';
  report.closeReasons[reason] = (report.closeReasons[reason] ?? 0) + 1;
}

export async function flood(options: {
  host: string;
  port: number;
  hostPublicKey: string;
  privateKey: string;
  seconds: number;
}): Promise<FloodReport> {
  const report: FloodReport = { sessions: 0, connectFailures: 0, messagesSent: 0, acks: {}, closeReasons: {} };
  const records = prepare();
  const deadline = Date.now() + options.seconds * 1000;
  while (Date.now() < deadline) {
    let channel: SecureChannel;
    try {
      channel = await connectSecure({
        host: options.host,
        port: options.port,
        hostPublicKey: options.hostPublicKey,
        privateKey: options.privateKey,
      });
    } catch {
      report.connectFailures++;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    report.sessions++;
    await round(channel, records, report, deadline);
  }
  return report;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [host, port, hostPublicKey, keyFile, seconds] = process.argv.slice(2);
  const report = await flood({
    host: host!,
    port: Number(port),
    hostPublicKey: hostPublicKey!,
    privateKey: readFileSync(keyFile!, 'utf8').trim(),
    seconds: Number(seconds),
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}
