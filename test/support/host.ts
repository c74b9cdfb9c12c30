// Test support: kernel objects under a unique prefix (the lab's Scratch).
export { Scratch, sh, uniquePrefix } from '../../src/lab/index.js';
