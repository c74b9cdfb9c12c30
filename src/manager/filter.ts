// The router's packet filter. Paper IV-B: the filter built in a virtual router is replicated
// into its own network's filter slots only, adapted so that it cannot touch other networks'
// traffic, with the network's default rule last.
import { LAYOUT_LIMITS } from '../config/index.js';
import type { FilterRuleSpec } from '../dataplane/index.js';
import { ValidationError } from '../errors/index.js';
import { hostBitsSet, parsePrefixText } from '../net/index.js';
import type { FilterReplace } from '../wire/index.js';
import type { ManagerContext, NetworkState } from './state.js';
import { QuotaExceededError } from './types.js';

/** Paper IV-B: the router's filter goes to its own network's filter slots only, with the network's default rule last. */
export function applyFilter(ctx: ManagerContext, state: NetworkState, message: FilterReplace): void {
  const rules: FilterRuleSpec[] = message.rules.map((rule, i) => {
    const path = `filterReplace.rules[${i}]${rule.handle ? ` (handle ${rule.handle})` : ''}`;
    const prefix = (text: string | null, field: string): string | undefined => {
      if (text === null) return undefined;
      const p = parsePrefixText(text, `${path}.${field}`);
      if (p.family !== rule.family) throw new ValidationError(`${path}.${field}`, `${text} is not IPv${rule.family}`);
      if (hostBitsSet(p.addr, p.length)) throw new ValidationError(`${path}.${field}`, `host bits are set in ${text}`);
      return text;
    };
    const ports = (range: readonly [number, number] | null, field: string): [number, number] | undefined => {
      if (range === null) return undefined;
      if (!(range[0] <= range[1]))
        throw new ValidationError(`${path}.${field}`, `port range ${range[0]}-${range[1]} is empty`);
      if (rule.proto !== 6 && rule.proto !== 17)
        throw new ValidationError(`${path}.${field}`, 'ports need protocol tcp (6) or udp (17)');
      return [range[0], range[1]];
    };
    const spec: FilterRuleSpec = { family: rule.family, action: rule.action };
    if (rule.proto !== 0) spec.proto = rule.proto;
    const src = prefix(rule.src, 'src');
    const dst = prefix(rule.dst, 'dst');
    const sport = ports(rule.sport, 'sport');
    const dport = ports(rule.dport, 'dport');
    if (src !== undefined) spec.src = src;
    if (dst !== undefined) spec.dst = dst;
    if (sport) spec.sport = sport;
    if (dport) spec.dport = dport;
    return spec;
  });
  // The filter slots per network are fixed by the map layout: reported as a quota like the others.
  const slots = rules.length + (state.definition.filterDefault === 'drop' ? 2 : 0);
  if (slots > LAYOUT_LIMITS.filterRules) {
    throw new QuotaExceededError(state.definition.name, 'filterRules', LAYOUT_LIMITS.filterRules, slots);
  }
  writeFilter(ctx, state, rules);
  state.filterRules = rules;
}

export function writeFilter(ctx: ManagerContext, state: NetworkState, rules: readonly FilterRuleSpec[]): void {
  // No rule matching means accept in the data plane: only a drop default needs rules.
  const defaults: FilterRuleSpec[] =
    state.definition.filterDefault === 'drop'
      ? [
          { family: 4, action: 'drop' },
          { family: 6, action: 'drop' },
        ]
      : [];
  try {
    ctx.dp.setFilter(state.definition.id, [...rules, ...defaults]);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(`filterReplace.${error.path}`, error.message.slice(error.path.length + 2));
    throw error;
  }
}
