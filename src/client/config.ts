// The client's configuration file (client.yaml): snake_case YAML, validated with zod; every
// error is a ValidationError whose path names the field. docs/manager.md documents it.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseDocument } from 'yaml';
import * as z from 'zod';
import { parseListenAddress, type ListenAddress } from '../config/index.js';
import { ValidationError, XnetmonError } from '../errors/index.js';

export interface ClientConfig {
  /** The host daemon's secure channel address. */
  readonly host: ListenAddress;
  /** Base64 of the host's 32-byte public key. */
  readonly hostPublicKey: string;
  /** File holding this router's private key. */
  readonly privateKeyFile: string;
  /** Sent in Hello, shown by `xnetmon clients`. */
  readonly name: string;
  /** Routing tables replicated, by name or number; local always wins, then this order. */
  readonly tables: readonly string[];
  /** The router's interfaces on the host's segments; null = every non-loopback interface. */
  readonly interfaces: readonly string[] | null;
  /** Changes seen within this time go out together (one re-dump, one batch). */
  readonly coalesceMs: number;
  /** A full re-dump at least this often, in case a monitor event was missed. */
  readonly pollIntervalMs: number;
  /** Reconnect backoff cap. */
  readonly reconnectMaxMs: number;
  /** Replicate the nftables forward chain (the documented subset). */
  readonly filter: boolean;
}

const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_-]{0,63}|\d{1,10})$/;
const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/;

function integerIn(min: number, max: number) {
  const rule = `must be an integer from ${min} to ${max}`;
  return z.number({ error: rule }).refine((n) => Number.isInteger(n) && n >= min && n <= max, { error: rule });
}

const clientFileSchema = z.strictObject(
  {
    host: z.string({ error: 'must be a "host:port" string' }).superRefine((text, ctx) => {
      try {
        parseListenAddress(text);
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          message: error instanceof ValidationError ? error.message.replace(/^listen: /, '') : String(error),
        });
      }
    }),
    host_public_key: z
      .string({ error: 'must be a base64 string' })
      .refine(
        (key) =>
          /^[A-Za-z0-9+/]{43}=$/.test(key) &&
          Buffer.from(key, 'base64').length === 32 &&
          Buffer.from(key, 'base64').toString('base64') === key,
        { error: 'must be the standard base64 encoding of a 32-byte public key (44 characters ending in "=")' },
      ),
    private_key_file: z
      .string({ error: 'must be an absolute path' })
      .refine((p) => p.startsWith('/') && !p.includes('\0'), { error: 'must be an absolute path' }),
    name: z
      .string({ error: 'must be a string' })
      .refine((n) => Buffer.byteLength(n) <= 64, { error: 'must be at most 64 bytes' })
      .optional(),
    tables: z
      .array(
        z
          .union([z.string(), z.number()], { error: 'must be a table name or number' })
          .transform(String)
          .refine((t) => TABLE_NAME.test(t) && t !== '0', {
            error: 'must be a table name (letters, digits, _ or -) or a number 1..4294967295',
          }),
        { error: 'must be a list of routing tables' },
      )
      .min(1, { error: 'must list at least one table' })
      .default(['main', 'local']),
    interfaces: z
      .array(
        z.string().refine((n) => INTERFACE_NAME.test(n), { error: 'must be an interface name of 1 to 15 characters' }),
        { error: 'must be a list of interface names' },
      )
      .min(1, { error: 'must list at least one interface, or be left out' })
      .nullable()
      .default(null),
    coalesce_ms: integerIn(1, 10_000).default(50),
    poll_interval_s: integerIn(1, 3600).default(30),
    reconnect_max_ms: integerIn(100, 600_000).default(5000),
    filter: z.boolean({ error: 'must be true or false' }).default(true),
  },
  { error: 'must be a mapping of client settings' },
);

function pathOf(segments: readonly PropertyKey[]): string {
  let path = '';
  for (const s of segments) path += typeof s === 'number' ? `[${s}]` : path === '' ? String(s) : `.${String(s)}`;
  return path === '' ? '(root)' : path;
}

/** Parses and validates client.yaml text; throws ValidationError naming the field. */
export function parseClientConfig(text: string, source = 'client.yaml'): ClientConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) throw new ValidationError(source, `YAML syntax error: ${syntax.message.trimEnd()}`);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ValidationError(
      source,
      `YAML cannot be expanded: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const parsed = clientFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const path = pathOf([...issue.path, ...unknownKeys.slice(0, 1)]);
    throw new ValidationError(path, unknownKeys.length ? 'is not a client setting' : issue.message);
  }
  const file = parsed.data;
  return {
    host: parseListenAddress(file.host, 'host'),
    hostPublicKey: file.host_public_key,
    privateKeyFile: file.private_key_file,
    name: file.name ?? hostname().slice(0, 64),
    tables: file.tables,
    interfaces: file.interfaces,
    coalesceMs: file.coalesce_ms,
    pollIntervalMs: file.poll_interval_s * 1000,
    reconnectMaxMs: file.reconnect_max_ms,
    filter: file.filter,
  };
}

export async function loadClientConfig(path: string): Promise<ClientConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new XnetmonError(
      'ERR_CONFIG_READ',
      `cannot read client config ${path}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return parseClientConfig(text, path);
}
