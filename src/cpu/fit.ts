// Online cost fit: non-negative least squares of the CPU time measured per period against the
// period's per-path packet and byte counts, with exponential forgetting (the smoothing) and a
// small ridge towards a prior, so that a path without traffic keeps its prior cost instead of an
// arbitrary one. Pure: no clock, no I/O.
import { ValidationError } from '../errors/index.js';

export interface CostFitOptions {
  /** Number of features (columns) of each sample. */
  features: number;
  /** Where a coefficient goes when its column has no information (>= 0). Default 0. */
  prior?: ArrayLike<number>;
  /** Weight kept by the past at each new sample, in (0, 1]: 0.95 remembers about 20 periods. */
  forgetting?: number;
  /** Ridge towards the prior, relative to each column's energy. Default 1e-3. */
  ridge?: number;
  /** Active set steps before the fit is declared not converged. Default 200. */
  maxSweeps?: number;
  /** Optimality: no coefficient held at 0 may improve the fit by more than this fraction of X'y. Default 1e-9. */
  tolerance?: number;
}

export interface FitResult {
  /** The coefficients, each >= 0. */
  coefficients: Float64Array;
  converged: boolean;
  sweeps: number;
  /** 1 - residual / total sum of squares (weighted); NaN while y has not varied. */
  rSquared: number;
  /** Root mean square residual per sample, in y's units. */
  rmse: number;
  /** Effective number of samples (sum of forgetting weights). */
  samples: number;
}

export class CostFit {
  readonly features: number;
  private readonly xx: Float64Array;
  private readonly xy: Float64Array;
  private yy = 0;
  private ySum = 0;
  private weight = 0;
  private readonly prior: Float64Array;
  private readonly forgetting: number;
  private readonly ridge: number;
  private readonly maxSweeps: number;
  private readonly tolerance: number;

  constructor(options: CostFitOptions) {
    const k = options.features;
    if (!Number.isInteger(k) || k < 1 || k > 64) throw new ValidationError('features', `${k} must be an integer 1..64`);
    const forgetting = options.forgetting ?? 0.95;
    if (!(forgetting > 0 && forgetting <= 1)) {
      throw new ValidationError('forgetting', `${forgetting} must be in (0, 1]`);
    }
    const ridge = options.ridge ?? 1e-3;
    if (!(ridge >= 0 && Number.isFinite(ridge))) throw new ValidationError('ridge', `${ridge} must be finite and >= 0`);
    this.features = k;
    this.xx = new Float64Array(k * k);
    this.xy = new Float64Array(k);
    this.prior = new Float64Array(k);
    if (options.prior) {
      if (options.prior.length !== k) {
        throw new ValidationError('prior', `has ${options.prior.length} entries, expected ${k}`);
      }
      for (let j = 0; j < k; j++) {
        const v = options.prior[j];
        if (!(v >= 0 && Number.isFinite(v))) throw new ValidationError(`prior[${j}]`, `${v} must be finite and >= 0`);
        this.prior[j] = v;
      }
    }
    this.forgetting = forgetting;
    this.ridge = ridge;
    this.maxSweeps = options.maxSweeps ?? 200;
    this.tolerance = options.tolerance ?? 1e-9;
  }

  /** Sets the prior (e.g. a rescaled constant table) for the next solves. */
  setPrior(prior: ArrayLike<number>): void {
    if (prior.length !== this.features) {
      throw new ValidationError('prior', `has ${prior.length} entries, expected ${this.features}`);
    }
    for (let j = 0; j < this.features; j++) this.prior[j] = prior[j] >= 0 && Number.isFinite(prior[j]) ? prior[j] : 0;
  }

  /** One period: feature values x (>= 0) and the measured y (>= 0). Bad input throws and changes nothing. */
  add(x: ArrayLike<number>, y: number): void {
    const k = this.features;
    if (x.length !== k) throw new ValidationError('x', `has ${x.length} entries, expected ${k}`);
    for (let j = 0; j < k; j++) {
      if (!(x[j] >= 0 && Number.isFinite(x[j]))) {
        throw new ValidationError(`x[${j}]`, `${x[j]} must be finite and >= 0`);
      }
    }
    if (!(y >= 0 && Number.isFinite(y))) throw new ValidationError('y', `${y} must be finite and >= 0`);
    const g = this.forgetting;
    for (let i = 0; i < k * k; i++) this.xx[i] *= g;
    for (let j = 0; j < k; j++) this.xy[j] *= g;
    this.yy *= g;
    this.ySum *= g;
    this.weight *= g;
    for (let a = 0; a < k; a++) {
      const xa = x[a];
      if (xa === 0) continue;
      this.xy[a] += xa * y;
      for (let b = 0; b < k; b++) this.xx[a * k + b] += xa * x[b];
    }
    this.yy += y * y;
    this.ySum += y;
    this.weight += 1;
  }

  get samples(): number {
    return this.weight;
  }

  /**
   * Solves min ||y - X c||^2 + sum_j lambda_j (c_j - prior_j)^2 over c >= 0 on the normal equations
   * (Lawson and Hanson's active set method: exact in a finite number of steps, k <= 64 columns).
   */
  solve(): FitResult {
    const k = this.features;
    const a = new Float64Array(k * k);
    const b = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const lambda = this.ridge * this.xx[j * k + j] + 1e-12;
      for (let i = 0; i < k; i++) a[j * k + i] = this.xx[j * k + i];
      a[j * k + j] += lambda;
      b[j] = this.xy[j] + lambda * this.prior[j];
    }
    const c = new Float64Array(k);
    const free = new Array<boolean>(k).fill(false);
    // A column that never had a value carries no information: its coefficient is its prior.
    const fixed = Array.from({ length: k }, (_, j) => this.xx[j * k + j] === 0);
    for (let j = 0; j < k; j++) if (fixed[j]) c[j] = this.prior[j];
    const scale = Math.max(...Array.from(b, Math.abs), 1e-300);
    let sweeps = 0;
    let converged = false;
    outer: while (sweeps < this.maxSweeps) {
      // The gradient of the objective (halved, negated): positive where raising c_j helps.
      let best = -1;
      let bestW = this.tolerance * scale;
      for (let j = 0; j < k; j++) {
        if (free[j] || fixed[j]) continue;
        let w = b[j];
        for (let i = 0; i < k; i++) w -= a[j * k + i] * c[i];
        if (w > bestW) {
          bestW = w;
          best = j;
        }
      }
      if (best < 0) {
        converged = true;
        break;
      }
      free[best] = true;
      for (;;) {
        sweeps++;
        if (sweeps > this.maxSweeps) break outer;
        const z = solveFree(a, b, free, k);
        if (!z) break outer;
        let alpha = 1;
        for (let j = 0; j < k; j++) if (free[j] && z[j] <= 0) alpha = Math.min(alpha, c[j] / (c[j] - z[j]));
        if (alpha >= 1) {
          for (let j = 0; j < k; j++) if (free[j]) c[j] = z[j];
          break;
        }
        for (let j = 0; j < k; j++) {
          if (!free[j]) continue;
          c[j] += alpha * (z[j] - c[j]);
          if (free[j] && c[j] <= 1e-15 * (1 + Math.abs(z[j]))) {
            free[j] = false;
            c[j] = 0;
          }
        }
      }
    }
    for (let j = 0; j < k; j++) if (!Number.isFinite(c[j]) || c[j] < 0) converged = false;
    // Residual sum of squares from the sufficient statistics: y'y - 2 c'X'y + c'X'X c.
    let sse = this.yy;
    for (let a = 0; a < k; a++) {
      sse -= 2 * c[a] * this.xy[a];
      for (let b = 0; b < k; b++) sse += c[a] * this.xx[a * k + b] * c[b];
    }
    sse = Math.max(0, sse);
    const sst = this.weight > 0 ? this.yy - (this.ySum * this.ySum) / this.weight : 0;
    const rSquared = sst > 1e-12 * Math.max(1, this.yy) ? 1 - sse / sst : Number.NaN;
    const rmse = this.weight > 0 ? Math.sqrt(sse / this.weight) : 0;
    return { coefficients: c, converged, sweeps, rSquared, rmse, samples: this.weight };
  }
}

/** Solves the free variables' block of a x = b (Gaussian elimination with partial pivoting); the others are 0. */
function solveFree(a: Float64Array, b: Float64Array, free: readonly boolean[], k: number): Float64Array | undefined {
  const idx: number[] = [];
  for (let j = 0; j < k; j++) if (free[j]) idx.push(j);
  const n = idx.length;
  const m = new Float64Array(n * (n + 1));
  idx.forEach((r, i) => {
    idx.forEach((col, j) => {
      m[i * (n + 1) + j] = a[r * k + col];
    });
    m[i * (n + 1) + n] = b[r];
  });
  for (let col = 0; col < n; col++) {
    let pivot = col;
    const w = n + 1;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * w + col]) > Math.abs(m[pivot * w + col])) pivot = r;
    if (!(Math.abs(m[pivot * (n + 1) + col]) > 0)) return undefined;
    if (pivot !== col) {
      for (let j = 0; j <= n; j++) [m[col * w + j], m[pivot * w + j]] = [m[pivot * w + j], m[col * w + j]];
    }
    for (let r = col + 1; r < n; r++) {
      const f = m[r * (n + 1) + col] / m[col * (n + 1) + col];
      if (f !== 0) for (let j = col; j <= n; j++) m[r * (n + 1) + j] -= f * m[col * (n + 1) + j];
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let v = m[i * (n + 1) + n];
    for (let j = i + 1; j < n; j++) v -= m[i * (n + 1) + j] * x[j];
    x[i] = v / m[i * (n + 1) + i];
  }
  const out = new Float64Array(k);
  idx.forEach((r, i) => {
    out[r] = x[i];
  });
  return out;
}
