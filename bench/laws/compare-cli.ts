// Prints the law comparison of docs/control.md as JSON. From the checkout, after make build:
//   node dist/bench/laws/compare-cli.js            (the comparison, deterministic)
//   node dist/bench/laws/compare-cli.js --timing   (law cost per period, this machine)

import { algorithm1Law } from '../../src/control/law/algorithm1-law.js';
import { compareLaws } from './compare.js';
import { DEFAULT_BETA, DEFAULT_PHI_INITIAL } from '../../src/control/law/defaults.js';
import { shareLaw } from '../../src/control/law/share-law.js';
import { timeControllerPeriod } from './timing.js';

if (process.argv.includes('--timing')) {
  const timings = [
    timeControllerPeriod(shareLaw({ beta: DEFAULT_BETA })),
    timeControllerPeriod(algorithm1Law({ beta: DEFAULT_BETA, phiInitial: DEFAULT_PHI_INITIAL })),
  ];
  process.stdout.write(`${JSON.stringify(timings, null, 2)}\n`);
} else {
  process.stdout.write(`${JSON.stringify(compareLaws(), null, 2)}\n`);
}
