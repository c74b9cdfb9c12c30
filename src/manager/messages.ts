// One update message of a session: decoded, checked against the session's state (Hello first,
// the protocol version), applied to the network, and answered with its Ack (docs/manager.md).
import { decodeMessage, encodeAck, PROTOCOL_VERSION, ProtocolError, type UpdateMessage } from '../wire/index.js';
import { applyFilter } from './filter.js';
import { applyNeighbourBatch } from './neighbours.js';
import { armStaleTimer, beginResync, endResync } from './resync.js';
import { applyRouteBatch } from './routes.js';
import { errorCode, errorText, type ManagerContext, type NetworkState, type RouterState } from './state.js';
import { BatchRejectedError, QuotaExceededError } from './types.js';

/** Handles one payload of one router's session; returns the Ack to send, and whether to close the session. */
export function handlePayload(
  ctx: ManagerContext,
  state: NetworkState,
  router: RouterState,
  payload: Buffer,
): { payload: Buffer | null; close: boolean } {
  let message: UpdateMessage;
  try {
    message = decodeMessage(payload);
  } catch (error) {
    const text = error instanceof ProtocolError ? error.message : errorText(error);
    router.lastError = text;
    ctx.logger.warn({ network: state.definition.name, err: text }, 'undecodable update message: session closed');
    return {
      payload: encodeAck({ sequence: 0, ok: false, errorCode: 'ERR_PROTOCOL', errorMessage: text }),
      close: true,
    };
  }
  const ack = (sequence: number, error?: { code: string; message: string }) =>
    encodeAck(
      error
        ? { sequence, ok: false, errorCode: error.code, errorMessage: error.message }
        : { sequence, ok: true, errorCode: '', errorMessage: '' },
    );

  if (message.type === 'hello') {
    if (message.version !== PROTOCOL_VERSION) {
      const text = `protocol version ${message.version} is not supported; the host speaks ${PROTOCOL_VERSION}`;
      router.lastError = text;
      return { payload: ack(0, { code: 'ERR_VERSION', message: text }), close: true };
    }
    router.clientName = message.clientName;
    router.helloSeen = true;
    beginResync(ctx, state, router);
    return { payload: ack(0), close: false };
  }
  if (message.type === 'ack')
    return { payload: ack(0, { code: 'ERR_UNEXPECTED', message: 'the host does not take Acks' }), close: false };
  if (!router.helloSeen)
    return { payload: ack(message.sequence, { code: 'ERR_NO_HELLO', message: 'send Hello first' }), close: false };

  try {
    switch (message.type) {
      case 'route-batch':
        applyRouteBatch(ctx, state, router, message);
        break;
      case 'neighbour-batch':
        applyNeighbourBatch(ctx, state, router, message);
        break;
      case 'filter-replace':
        applyFilter(ctx, state, message);
        break;
      case 'end-of-sync':
        endResync(ctx, state, router);
        break;
    }
  } catch (error) {
    const code = errorCode(error);
    const text = errorText(error);
    if (router.resyncing) router.resyncFailed = true;
    router.lastError = text;
    if (error instanceof QuotaExceededError) state.quotaRejections[error.table]++;
    else if (code === 'ERR_MAP_FULL' || (error instanceof BatchRejectedError && code !== 'ERR_RESYNC_INCOMPLETE'))
      state.mapWriteFailures++;
    // A router can send refused batches as fast as the channel carries them: one line per interval.
    ctx.failures.report(
      `${state.definition.name}:${code}`,
      { network: state.definition.name, sequence: message.sequence, code, err: text },
      `${message.type} refused`,
    );
    return { payload: ack(message.sequence, { code, message: text }), close: false };
  }
  router.lastUpdate = ctx.clock.now();
  // A resync that makes progress keeps the stale routes (with 0 they wait for EndOfSync).
  if (router.resyncing && ctx.config.host.staleRouteTimeoutS > 0) armStaleTimer(ctx, state, router);
  return { payload: ack(message.sequence), close: false };
}
