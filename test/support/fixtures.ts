// Test fixtures are data under test/fixtures/, read from the checkout: tests run from dist/test/,
// so the folder is found by walking up from this module to the directory that holds it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function fixturesRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test', 'fixtures');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no test/fixtures above ${dirname(fileURLToPath(import.meta.url))}`);
    dir = parent;
  }
}

/** The parsed JSON of test/fixtures/<path>. */
export function readFixture(path: string): unknown {
  return JSON.parse(readFileSync(join(fixturesRoot(), path), 'utf8')) as unknown;
}
