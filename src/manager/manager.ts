// The data plane manager (host side), its public face. Paper IV-B: the XNetMon server maps the
// forwarding table and packet filter built in each DomU to Dom0, into the tables of that
// DomU's network only, and adapts filter rules so that they cannot touch other networks' traffic.
//
// One UpdateManager serves every network. For each it keeps the authoritative route table
// (what the router said, and what the maps hold for it), so that a failed kernel write is
// rolled back, evicted routes can be restored, and a restart of either side needs no flush:
// routes go stale and are swept after the router's full resync (RFC 4724 style).
//
// The work is done in rooms, each with one job: messages.ts (one message of a session),
// routes.ts (route batch validation), neighbours.ts (neighbours and their host routes),
// filter.ts, quota.ts, targets.ts (what each route's map entry points at), writes.ts (plan,
// write, roll back), memory.ts (paper IV-A memory control), resync.ts (stale routes and their
// timers), adopt.ts (a host daemon restart); state.ts holds what they share, table.ts a table.
import { networkQuotas, type XnetmonConfig } from '../config/index.js';
import { formatPrefixBytes } from '../net/index.js';
import type { UpdateSession } from '../wire/index.js';
import { adopt } from './adopt.js';
import { writeFilter } from './filter.js';
import { placeInterface } from './interfaces.js';
import { evictRoutes, restoreRoutes } from './memory.js';
import { handlePayload } from './messages.js';
import { stageNeighbourRoutes } from './neighbours.js';
import { quotaStatus } from './quota.js';
import { sessionEnded, withdrawAll } from './resync.js';
import type { SegmentMap } from './segments.js';
import { errorText, ManagerContext, operationOn, routersOf, type NetworkState, type RouterState } from './state.js';
import { EVICTED, ORIGIN_ADOPTED, ORIGIN_NEIGHBOUR, ORIGIN_ROUTER, STALE } from './table.js';
import { targetOf } from './targets.js';
import type { QuotaStatus, RouteCounts, RouteInfo, SessionInfo, UpdateManagerOptions } from './types.js';
import { operate } from './writes.js';

/**
 * Longest a session's messages are handled before the event loop runs other work. A session whose
 * records arrived together (a flood, or a large resync) is otherwise served message after message
 * in microtasks, and no other router's socket is read until its backlog is done.
 */
const SESSION_SLICE_MS = 5;

export class UpdateManager {
  private readonly ctx: ManagerContext;

  constructor(options: UpdateManagerOptions) {
    const ctx = new ManagerContext(options);
    this.ctx = ctx;
    for (const network of ctx.config.networks) ctx.networks.set(network.id, ctx.newState(network));
    if (options.adoptInstalledRoutes ?? true) for (const state of ctx.networks.values()) adopt(ctx, state);
  }

  /**
   * Serves one session of the secure channel until it closes. The session's peerId names
   * the network and its peerPublicKey the router (the channel authenticated both; a session
   * without a key is the network's first router). A newer session of the same router
   * replaces an older one; another router's session is never touched. Never rejects.
   */
  async attachSession(session: UpdateSession): Promise<void> {
    const ctx = this.ctx;
    const state = [...ctx.networks.values()].find((s) => s.definition.name === session.peerId);
    const key = session.peerPublicKey ?? state?.definition.routers[0]?.clientPublicKey ?? '';
    const router = state?.routers.get(key);
    if (!state || !router || ctx.closed) {
      ctx.logger.warn(
        { peer: session.peerId, remote: session.remoteAddress },
        'update session for an unknown network or router: closed',
      );
      session.close();
      return;
    }
    const where = { network: state.definition.name, router: router.vif };
    const previous = router.session;
    router.session = session;
    router.helloSeen = false;
    router.resyncing = false;
    router.connectedSince = ctx.clock.now();
    router.disconnectedSince = null;
    router.lastError = null;
    if (previous) {
      ctx.logger.info(where, 'a new update session of this router replaces its previous one');
      previous.close();
    }
    ctx.logger.info({ ...where, remote: session.remoteAddress }, 'update session started');
    try {
      let sliceStart = performance.now();
      for await (const payload of session.messages()) {
        if (router.session !== session) break;
        const reply = handlePayload(ctx, state, router, payload);
        if (reply.payload) await session.send(reply.payload);
        if (reply.close) {
          session.close();
          break;
        }
        // Fairness between networks (one cannot starve another's updates): a macrotask turn.
        if (performance.now() - sliceStart >= SESSION_SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
    } catch (error) {
      ctx.logger.info({ ...where, err: errorText(error) }, 'update session ended with an error');
    } finally {
      if (router.session === session && state.routers.get(router.key) === router) sessionEnded(ctx, state, router);
    }
  }

  /** Route counts of one network (by id or name). */
  routeCounts(network: number | string): RouteCounts {
    return this.counts(this.ctx.state(network));
  }

  /** Entries a network has in the maps: the controller's memory resource (paper IV-A). Constant time. */
  routeCount(network: number | string): number {
    const state = this.ctx.state(network);
    return state.tables[4].installed + state.tables[6].installed + state.syntheticDefaults.size;
  }

  /** A network's use of each shared table against its quota, and the batches refused for it. */
  quotaStatus(network: number | string): QuotaStatus {
    return quotaStatus(this.ctx, this.ctx.state(network));
  }

  allRouteCounts(): RouteCounts[] {
    return [...this.ctx.networks.values()].sort((a, b) => a.definition.id - b.definition.id).map((s) => this.counts(s));
  }

  /** One line per router of every network, in network id then configuration order (`xnetmon clients`). */
  sessions(): SessionInfo[] {
    const date = (t: number | null): Date | null => (t === null ? null : new Date(t));
    return [...this.ctx.networks.values()]
      .sort((a, b) => a.definition.id - b.definition.id)
      .flatMap((s) => {
        const counts = this.counts(s);
        return s.definition.routers.flatMap((configured) => {
          const r = s.routers.get(configured.clientPublicKey);
          if (!r) return [];
          return [
            {
              netId: s.definition.id,
              network: s.definition.name,
              router: r.vif,
              connected: r.session !== null,
              peer: r.session?.peerId ?? null,
              remoteAddress: r.session?.remoteAddress ?? null,
              clientName: r.clientName,
              connectedSince: r.session ? date(r.connectedSince) : null,
              disconnectedSince: date(r.disconnectedSince),
              lastUpdate: date(r.lastUpdate),
              resyncing: r.resyncing,
              routes: counts.routes,
              stale: counts.stale,
              evicted: counts.evicted,
              lastError: r.lastError,
            },
          ];
        });
      });
  }

  /** The authoritative table of a network, readable (tests, `xnetmon routes`). */
  routes(network: number | string): RouteInfo[] {
    const state = this.ctx.state(network);
    const out: RouteInfo[] = [];
    for (const table of [state.tables[4], state.tables[6]]) {
      for (let slot = 0; slot < table.top; slot++) {
        const origin = table.origin[slot]!;
        if (origin < ORIGIN_ROUTER) continue;
        const bits = table.bits[slot]!;
        out.push({
          prefix: formatPrefixBytes(table.addressOf(slot), table.length[slot]!, 0, table.family),
          target: targetOf(table.target[slot]!),
          stale: (bits & STALE) !== 0,
          evicted: (bits & EVICTED) !== 0,
          source: origin === ORIGIN_NEIGHBOUR ? 'neighbour' : origin === ORIGIN_ADOPTED ? 'adopted' : 'router',
        });
      }
    }
    return out;
  }

  /**
   * Paper IV-A memory control: removes `fraction` of a network's installed routes from the
   * maps, most specific first, and installs a default route to the VM so that no packet is
   * lost, only slowed. Returns how many routes were evicted (memory.ts).
   */
  evictRoutes(network: number | string, fraction: number): number {
    return evictRoutes(this.ctx, network, fraction);
  }

  /** Puts a network's evicted routes back into the maps, as far as they fit (memory.ts). Returns how many. */
  restoreRoutes(network: number | string): number {
    return restoreRoutes(this.ctx, network);
  }

  /**
   * A new configuration: networks that are gone lose their routes and session; changed
   * networks get their routes re-resolved (a segment may have moved) and their filter's
   * default rule re-applied.
   */
  updateConfig(config: XnetmonConfig, segments: SegmentMap = this.ctx.segments): void {
    const ctx = this.ctx;
    const previous = ctx.config;
    ctx.config = config;
    ctx.segments = segments;
    ctx.indexRouterMacs();
    // A quota change applies live: the next batch is checked against the new quota.
    ctx.quotas = networkQuotas(config, ctx.capacities);
    const ids = new Set(config.networks.map((n) => n.id));
    for (const [id, state] of ctx.networks) {
      if (ids.has(id)) continue;
      withdrawAll(ctx, state, 'network removed from the configuration');
      for (const router of state.routers.values()) router.session?.close();
      ctx.networks.delete(id);
    }
    for (const network of config.networks) {
      const state = ctx.networks.get(network.id);
      if (!state) {
        ctx.networks.set(network.id, ctx.newState(network));
        continue;
      }
      const before = previous.networks.find((n) => n.id === network.id);
      state.definition = network;
      if (before === network) continue;
      this.replaceRouters(state);
      this.reresolve(state);
      if (state.filterRules) {
        try {
          writeFilter(ctx, state, state.filterRules);
        } catch (error) {
          ctx.logger.error(
            { network: state.definition.name, err: errorText(error) },
            "rewriting the filter after a configuration change failed; the router's next FilterReplace writes it",
          );
        }
      }
    }
  }

  /** Stops timers and closes sessions. Routes stay in the maps: a restarted daemon adopts them. */
  close(): void {
    this.ctx.closed = true;
    for (const state of this.ctx.networks.values()) {
      this.ctx.clock.clearTimeout(state.adoptionTimer);
      state.adoptionTimer = undefined;
      for (const router of state.routers.values()) {
        this.ctx.clock.clearTimeout(router.staleTimer);
        router.staleTimer = undefined;
        const session = router.session;
        router.session = null;
        session?.close();
      }
    }
  }

  /** After a configuration change: routers left out lose their routes and session; new ones get a bit. */
  private replaceRouters(state: NetworkState): void {
    const next = routersOf(state.definition, state.routers);
    let removed = 0;
    const gone: RouterState[] = [];
    for (const router of state.routers.values()) {
      if (next.has(router.key)) continue;
      removed = (removed | router.bit) >>> 0;
      gone.push(router);
    }
    if (removed !== 0) withdrawAll(this.ctx, state, 'router removed from the configuration', removed);
    for (const router of gone) {
      state.adoptedPending.delete(router.key);
      const session = router.session;
      router.session = null;
      session?.close();
    }
    state.routers.clear();
    for (const [key, router] of next) state.routers.set(key, router);
  }

  /** After a configuration change: every interface placed again, every target and neighbour host route decided again. */
  private reresolve(state: NetworkState): void {
    const lost = state.interfaces.replace((iface) => placeInterface(this.ctx, state.definition, iface));
    for (const entry of lost) {
      this.ctx.logger.warn(
        { network: state.definition.name, iface: entry.iface.name, err: entry.problem },
        'routes out of this interface lost their segment: they go via the VM',
      );
    }
    const op = operationOn(state);
    try {
      operate(this.ctx, state, op, () => {
        for (const table of [state.tables[4], state.tables[6]]) {
          for (let slot = 0; slot < table.top; slot++) {
            const origin = table.origin[slot]!;
            if (origin === ORIGIN_ROUTER || origin === ORIGIN_NEIGHBOUR) table.stage(slot);
          }
        }
        stageNeighbourRoutes(this.ctx, state, op, state.neighbours.values());
      });
    } catch (error) {
      this.ctx.logger.error(
        { network: state.definition.name, err: errorText(error) },
        're-resolving routes after a configuration change failed',
      );
    }
  }

  private counts(state: NetworkState): RouteCounts {
    const { 4: t4, 6: t6 } = state.tables;
    return {
      netId: state.definition.id,
      network: state.definition.name,
      installed: t4.installed + t6.installed + state.syntheticDefaults.size,
      routes: t4.used + t6.used,
      stale: t4.stale + t6.stale,
      evicted: t4.evicted + t6.evicted,
      unresolved: t4.unresolved + t6.unresolved,
      neighbours: state.neighbours.size,
      neighbourRoutes: t4.neighbourRoutes + t6.neighbourRoutes,
    };
  }
}
