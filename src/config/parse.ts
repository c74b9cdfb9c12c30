// Reading and writing the YAML file.

import { readFile } from 'node:fs/promises';
import { isNode, LineCounter, parseDocument, stringify, type Document } from 'yaml';
import { ValidationError, XnetmonError } from '../errors/index.js';
import { issuesToError, type PathSegment } from './issues.js';
import { configFileSchema, configFromFile, configToFile, issuesFromZod } from './schema.js';
import type { ConfigChecks, XnetmonConfig } from './types.js';
import { checkedConfig, semanticIssues } from './validate.js';

/** Aliases expand; a small cap stops "billion laughs" documents. */
const MAX_YAML_ALIASES = 100;

function locator(doc: Document, lineCounter: LineCounter, source: string) {
  return (segments: readonly PathSegment[]): string | undefined => {
    // Missing fields have no node: point at the closest enclosing one.
    for (let depth = segments.length; depth >= 0; depth--) {
      const node: unknown = depth === 0 ? doc.contents : doc.getIn(segments.slice(0, depth), true);
      if (isNode(node) && node.range) {
        const { line } = lineCounter.linePos(node.range[0]);
        return `${source} line ${line}`;
      }
    }
    return undefined;
  };
}

/**
 * Parses and validates a YAML configuration. Throws ValidationError: for YAML syntax errors its
 * path is `source` and its message gives line and column; otherwise its path names the field.
 */
export function parseConfig(yamlText: string, source = 'config', checks: ConfigChecks = {}): XnetmonConfig {
  const lineCounter = new LineCounter();
  // Merge keys (<<: *template) let a file share settings between networks.
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: true, uniqueKeys: true, merge: true });
  const syntaxError = doc.errors[0];
  if (syntaxError) throw new ValidationError(source, `YAML syntax error: ${syntaxError.message.trimEnd()}`);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    throw new ValidationError(
      source,
      `YAML cannot be expanded: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (raw === null || raw === undefined)
    throw new ValidationError(source, 'the configuration is empty: it needs at least host.links');

  // Top-level "x-..." keys hold YAML anchors for merge keys (the docker-compose habit); a typo
  // cannot start with "x-" by accident, so every other unknown key is still an error.
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    raw = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
  }

  const rendering = { locate: locator(doc, lineCounter, source) };
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) throw issuesToError(issuesFromZod(parsed.error, raw), rendering);
  const config = configFromFile(parsed.data);
  const issues = semanticIssues(config, checks);
  if (issues.length > 0) throw issuesToError(issues, rendering);
  return config;
}

/** Reads and parses a config file; unreadable files throw XnetmonError 'ERR_CONFIG_READ'. */
export async function loadConfigFile(path: string, checks: ConfigChecks = {}): Promise<XnetmonConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason =
      error instanceof Error && 'code' in error ? `${String(error.code)}: ${error.message}` : String(error);
    throw new XnetmonError('ERR_CONFIG_READ', `cannot read config file ${path}: ${reason}`, { cause: error });
  }
  return parseConfig(text, path, checks);
}

const HEADER = 'XNetMon configuration (docs/config.md describes every field).';

/**
 * Writes a config as YAML with every field explicit; parseConfig(serializeConfig(c)) deep-equals
 * the normalized c. Throws ValidationError if `config` is not valid, so a written file always loads.
 */
export function serializeConfig(config: XnetmonConfig): string {
  const file = configToFile(checkedConfig(config));
  // Strings are quoted so that no YAML 1.1 reader takes a MAC such as 02:00:00:00:01:01 for a number.
  const body = stringify(file, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0 });
  return `# ${HEADER}\n${body}`;
}
