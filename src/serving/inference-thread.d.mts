import type { FoldedWeights } from './folded-forward.mjs';

/** Messages to an inference thread. */
export type ToThread =
  | { type: 'load'; model: number; layout: { poolAfter: boolean }[]; weights: FoldedWeights }
  | { type: 'unload'; model: number }
  /** Images are in the input slab (shared); `input`/`output`: new, bigger slabs to use from now on. */
  | { type: 'run'; job: number; model: number; count: number; input?: Float32Array; output?: Float32Array };

/** What a thread starts with: its engine, and the shared slabs batches come in and probabilities go out through. */
export interface ThreadData {
  engine: string;
  input: Float32Array;
  output: Float32Array;
}

/** Messages from an inference thread. */
export type FromThread =
  | { type: 'ready' }
  | { type: 'loaded'; model: number }
  /** The probabilities are in the output slab. */
  | { type: 'done'; job: number }
  | { type: 'failed'; job: number; message: string }
  | { type: 'fatal'; message: string };
