import type { FoldedWeights } from './folded-forward.mjs';

/** Messages to an inference thread. */
export type ToThread =
  | { type: 'load'; model: number; layout: { poolAfter: boolean }[]; weights: FoldedWeights }
  | { type: 'unload'; model: number }
  | { type: 'run'; job: number; model: number; input: Float32Array; count: number };

/** Messages from an inference thread. */
export type FromThread =
  | { type: 'ready' }
  | { type: 'loaded'; model: number }
  | { type: 'done'; job: number; probabilities: Float32Array }
  | { type: 'failed'; job: number; message: string }
  | { type: 'fatal'; message: string };
