// What each Debian package ships is the closure of its entry point (packaging/closure.ts): the
// router's must reach no host module and no libbpf binding, and the host's must reach the CLI's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closure, importSpecifiers, packageName, ClosureError } from '../../packaging/closure.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE_MODULES = join(DIST, '..', 'node_modules');
const rel = (entry: string) => relative('.', join(DIST, entry));

test('the client package reaches no host module, no libbpf binding, no lab', () => {
  const c = closure(rel('src/cli/client-main.js'), NODE_MODULES);
  const host = c.files.filter((f) => /\/src\/(loader|dataplane|manager|lab|control\/(?!logger))|\/bench\//.test(f));
  assert.deepEqual(host, []);
  assert.ok(c.files.some((f) => f.endsWith('src/client/index.js')));
  assert.ok(c.files.some((f) => f.endsWith('src/crypto/index.js')));
  assert.ok(!c.packages.includes('koffi') && !c.packages.some((p) => p.startsWith('@koromix/')), 'no koffi');
  assert.ok(!c.packages.includes('prom-client'));
  for (const p of ['commander', 'pino', 'zod', 'yaml']) assert.ok(c.packages.includes(p), p);
});

test('the host package reaches the data plane, its binding and the daemon (the check can fail)', () => {
  const h = closure(rel('src/cli/main.js'), NODE_MODULES);
  for (const f of ['src/loader/libbpf.js', 'src/dataplane/index.js', 'src/cli/daemon-main.js'])
    assert.ok(
      h.files.some((x) => x.endsWith(f)),
      f,
    );
  assert.ok(h.packages.includes('koffi'));
  assert.ok(
    !h.packages.some((p) => ['typescript', 'fast-check', 'pino-pretty', '@types/node'].includes(p)),
    'no development dependency',
  );
});

test('import specifiers: static, dynamic, side effect, re-export; package names of bare ones', () => {
  const source =
    "import a from './a.js';\nexport * from \"../b.js\";\nimport 'c';\nconst d = await import('./d.js');\nimport {\n  e,\n} from '@s/e/sub';";
  assert.deepEqual(importSpecifiers(source).sort(), ['../b.js', './a.js', './d.js', '@s/e/sub', 'c']);
  assert.equal(packageName('@s/e/sub'), '@s/e');
  assert.equal(packageName('pino/file'), 'pino');
  assert.equal(packageName('node:fs'), undefined);
  assert.equal(packageName('fs'), undefined);
});

test('a missing module or package is an error naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'closure-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    writeFileSync(join(dir, 'main.js'), "import './gone.js';\n");
    assert.throws(
      () => closure(join(dir, 'main.js'), join(dir, 'node_modules')),
      (e: unknown) => e instanceof ClosureError && /gone\.js: imported but not built/.test(e.message),
    );
    writeFileSync(join(dir, 'main.js'), "import 'left-pad';\n");
    assert.throws(
      () => closure(join(dir, 'main.js'), join(dir, 'node_modules')),
      /package left-pad \(needed by .*main\.js\) is not in/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
