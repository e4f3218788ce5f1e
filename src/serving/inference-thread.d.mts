import type { FoldedWeights } from './folded-forward.mjs';

/** Messages to an inference thread. */
export type ToThread =
  | { type: 'load'; model: number; layout: { poolAfter: boolean }[]; weights: FoldedWeights }
  | { type: 'unload'; model: number }
  /** Images are in the slot's input slab (shared); `input`/`output`: new, bigger slabs for that slot from now on. */
  | { type: 'run'; job: number; model: number; count: number; slot: number; input?: Float32Array; output?: Float32Array };

/** What a thread starts with: per slot, the shared slabs a batch comes in and its probabilities go out through. */
export interface ThreadData {
  slots: { input: Float32Array; output: Float32Array }[];
}

/** Messages from an inference thread. */
export type FromThread =
  | { type: 'ready' }
  | { type: 'loaded'; model: number }
  | { type: 'load-failed'; model: number; message: string }
  /** The probabilities are in the output slab. */
  | { type: 'done'; job: number }
  | { type: 'failed'; job: number; message: string }
  | { type: 'fatal'; message: string };
