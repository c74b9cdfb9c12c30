// The admin interface between the daemon and the CLI: the protocol (JSON lines over a Unix socket
// that only root reaches), its server (the daemon's) and client (the CLI's), and the views of the
// commands whose answers the CLI formats, defined once for both sides. Loads no data plane code:
// the CLI's admin commands stay lean.
export { AdminError, AdminReplyError, type AdminRequest, type AdminRequestId, type AdminResponse } from './protocol.js';
export {
  AdminServer,
  AdminSocketError,
  checkSocketDirectory,
  type AdminHandler,
  type AdminServerLimits,
} from './server.js';
export {
  AdminClient,
  adminRequest,
  parseStatusView,
  parseNetworkSummaries,
  parseRoutesView,
  parseClientsView,
  parseDriftView,
} from './client.js';
export type {
  StatusView,
  StatusDriftView,
  DriftView,
  NetworkSummary,
  RoutesView,
  ClientsView,
  CpuStatusView,
} from './views.js';
