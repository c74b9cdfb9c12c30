// What a package ships: the built modules an entry point reaches (static and dynamic imports of
// the tsc output) and the npm packages those modules import, with the packages they depend on.
// `node dist/packaging/closure.js ENTRY NODE_MODULES` prints `file PATH` and `package DIR` lines;
// packaging/stage.sh copies exactly those. The client's entry reaches no libbpf binding (koffi),
// so the router package carries none: test/unit/package-closure.test.ts checks it.
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Closure {
  /** Module files, relative to the working directory, sorted. */
  files: string[];
  /** Package directories relative to the node_modules root (`pino`, `@pinojs/redact`, `a/node_modules/b`), sorted. */
  packages: string[];
}

export class ClosureError extends Error {
  readonly code = 'ERR_PACKAGE_CLOSURE';
}

const IMPORT_PATTERNS = [
  /\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
];

const BUILTINS = new Set(builtinModules);

/** The specifiers a module imports (tsc's output keeps them as written). */
export function importSpecifiers(source: string): string[] {
  const out = new Set<string>();
  for (const pattern of IMPORT_PATTERNS) for (const m of source.matchAll(pattern)) out.add(m[1]);
  return [...out];
}

/** `@scope/name/sub/path` -> `@scope/name`; `name/sub` -> `name`; builtins -> undefined. */
export function packageName(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0])) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Where Node finds package `name` required from inside package directory `from` (or the root). */
function findPackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; dir.startsWith(`${root}/`); dir = dirname(dir)) {
    const nested = join(dir, 'node_modules', name);
    if (existsSync(join(nested, 'package.json'))) return nested;
  }
  const top = join(root, name);
  return existsSync(join(top, 'package.json')) ? top : undefined;
}

export function closure(entry: string, nodeModules: string): Closure {
  const root = resolve(nodeModules);
  const files = new Set<string>();
  const bare = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    if (!existsSync(file)) throw new ClosureError(`${relative('.', file)}: imported but not built`);
    files.add(file);
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else {
        const name = packageName(spec);
        if (name) bare.add(name);
      }
    }
  }
  const packages = new Set<string>();
  const pending: { name: string; from: string; optional: boolean; by: string }[] = [...bare].map((name) => ({
    name,
    from: root,
    optional: false,
    by: entry,
  }));
  while (pending.length) {
    const { name, from, optional, by } = pending.pop()!;
    const dir = findPackage(name, from, root);
    if (!dir) {
      if (optional) continue;
      throw new ClosureError(`package ${name} (needed by ${by}) is not in ${nodeModules}`);
    }
    const rel = relative(root, dir);
    if (packages.has(rel)) continue;
    packages.add(rel);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const optionalNames = Object.keys(manifest.optionalDependencies ?? {});
    for (const dep of Object.keys(manifest.dependencies ?? {}))
      pending.push({ name: dep, from: dir, optional: optionalNames.includes(dep), by: rel });
    // Optional dependencies are platform builds (koffi's): npm installed only this machine's.
    for (const dep of optionalNames) pending.push({ name: dep, from: dir, optional: true, by: rel });
  }
  return { files: [...files].map((f) => relative('.', f)).sort(), packages: [...packages].sort() };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [entry, nodeModules] = process.argv.slice(2);
  if (!entry || !nodeModules) {
    process.stderr.write('usage: closure.js ENTRY NODE_MODULES\n');
    process.exit(2);
  }
  try {
    const result = closure(entry, nodeModules);
    const lines = [...result.files.map((f) => `file ${f}`), ...result.packages.map((p) => `package ${p}`)];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`closure: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
