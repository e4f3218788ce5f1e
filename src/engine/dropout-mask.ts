// Counter-based dropout masks: element i of a tensor is kept when hash(i, key) < threshold.
// Being a pure function of (key, i), a mask never has to be stored: the backward pass and
// other backends regenerate exactly the same one. simd/kernels.c has the same hash.

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A mask key from a seed (any integer); different seeds give unrelated masks. */
export function dropoutKey(seed: number): number {
  return fmix32((Math.trunc(seed) ^ 0x5bd1e995) >>> 0);
}

/** Keep threshold on the 32-bit hash; 0 means no dropout. */
export function keepThreshold(rate: number): number {
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`dropout rate must be in [0, 1), got ${rate}`);
  if (rate === 0) return 0;
  return Math.min(2 ** 32 - 1, Math.max(1, Math.round((1 - rate) * 2 ** 32)));
}

export function isKept(index: number, key: number, threshold: number): boolean {
  return threshold === 0 || fmix32((Math.imul(index, 0x9e3779b1) + key) >>> 0) < threshold;
}

/** 1 for kept elements, 0 for dropped ones. */
export function keepMask(size: number, key: number, threshold: number): Float32Array {
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) mask[i] = isKept(i, key, threshold) ? 1 : 0;
  return mask;
}
