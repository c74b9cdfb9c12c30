// `--version`: the release and the build id of the BPF object built with it. Both come from
// dist/build-info.json, which `make build` writes after compiling (a hash of build/xnetmon.bpf.o),
// so that the client, which ships no BPF object, names the data plane it was built with.
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  /** The first 16 hex digits of the SHA-256 of build/xnetmon.bpf.o. */
  bpfBuildId: string;
}

const UNKNOWN: BuildInfo = { version: 'unknown', bpfBuildId: 'unknown' };

/** Reads dist/build-info.json (this module is dist/src/cli/version.js); `unknown` when tsc ran without make. */
export function readBuildInfo(): BuildInfo {
  try {
    const info = JSON.parse(
      readFileSync(new URL('../../build-info.json', import.meta.url), 'utf8'),
    ) as Partial<BuildInfo>;
    return { version: info.version ?? UNKNOWN.version, bpfBuildId: info.bpfBuildId ?? UNKNOWN.bpfBuildId };
  } catch {
    return UNKNOWN;
  }
}

/** `xnetmon 0.1.0 (bpf build id 3f2a9c1e5b7d4a60)`. */
export function versionLine(command: string): string {
  const info = readBuildInfo();
  return `${command} ${info.version} (bpf build id ${info.bpfBuildId})`;
}
