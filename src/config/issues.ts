// Problems found in a configuration, before they become one ValidationError. Paths are kept as
// segments in file (snake_case) form so they can be rendered ("networks[1].reserve.links.eth9")
// and located in the YAML document (line numbers).

import { ValidationError } from '../errors/index.js';

export type PathSegment = string | number;

export interface ConfigIssue {
  readonly segments: readonly PathSegment[];
  /** Names the bad value and says why it is bad. */
  readonly message: string;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** networks[1].reserve.links.eth9 ; keys that are not plain identifiers are quoted: links["eth1.100"]. */
export function formatPath(segments: readonly PathSegment[]): string {
  let path = '';
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) path += path === '' ? segment : `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path === '' ? '(root)' : path;
}

/** A short, quotable rendering of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 72 ? `${quoted.slice(0, 69)}..."` : quoted;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** Sums such as 0.1 + 0.2 print as 0.3, not 0.30000000000000004. */
export function formatShare(value: number): string {
  return String(Number(value.toPrecision(12)));
}

/** The index at which the running sum of values first exceeds limit (the entry that tips a sum over), or -1. */
export function firstOverLimit(values: readonly number[], limit: number): number {
  let running = 0;
  for (let index = 0; index < values.length; index++) {
    running += values[index]!;
    if (running > limit) return index;
  }
  return -1;
}

export function valueAt(root: unknown, segments: readonly PathSegment[]): unknown {
  let node: unknown = root;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object') return undefined;
    if (!Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<PathSegment, unknown>)[segment];
  }
  return node;
}

export interface IssueRendering {
  /** Where a path is in the source text, e.g. "xnetmon.yaml line 12"; undefined if unknown. */
  readonly locate?: (segments: readonly PathSegment[]) => string | undefined;
  /** Rewrites segments before rendering (live changes name a network by its name, not index). */
  readonly rewrite?: (segments: readonly PathSegment[]) => readonly PathSegment[];
}

const MAX_LISTED_ISSUES = 20;

/** One ValidationError for the first issue; the others are listed in its message. */
export function issuesToError(issues: readonly ConfigIssue[], rendering: IssueRendering = {}): ValidationError {
  const render = (issue: ConfigIssue): { path: string; message: string } => {
    const location = rendering.locate?.(issue.segments);
    const segments = rendering.rewrite ? rendering.rewrite(issue.segments) : issue.segments;
    return { path: formatPath(segments), message: location ? `${issue.message} (${location})` : issue.message };
  };
  const [first, ...rest] = issues;
  if (!first) throw new Error('issuesToError called without issues');
  const head = render(first);
  let message = head.message;
  if (rest.length > 0) {
    const listed = rest
      .slice(0, MAX_LISTED_ISSUES)
      .map(render)
      .map((other) => `\n  also ${other.path}: ${other.message}`);
    const unlisted = rest.length - listed.length;
    message += `${listed.join('')}${unlisted > 0 ? `\n  and ${unlisted} more` : ''}`;
  }
  return new ValidationError(head.path, message);
}
