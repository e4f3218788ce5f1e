export const ENGINE_NAMES = ['gpu', 'node', 'wasm', 'cpu'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export interface EngineInfo {
  name: EngineName;
  /** The tfjs backend name (tensorflow, wasm, cpu). */
  backend: string;
  /** Human-readable label used in metrics, e.g. "wasm-simd" or "tfjs-node-gpu". */
  label: string;
  /** Threads the engine computes with, where known (wasm: XNNPACK's pool size). */
  threads?: number;
}
