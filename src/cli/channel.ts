// Wiring of the secure channel and the update manager into the daemon (filled when both land).
import type { RouteAuthorityFactory } from '../control/index.js';

export const channelAuthority: RouteAuthorityFactory | undefined = undefined;
