// The make lab job: placeholder until the daemon lands (replaced below).
export async function runDemo(_opts: { prefix?: string; report: string; quick?: boolean }): Promise<void> {
  throw new Error('not yet');
}
