// Picks the fastest tfjs backend available at run time:
//   gpu  @tensorflow/tfjs-node-gpu (CUDA)      backend 'tensorflow'
//   node @tensorflow/tfjs-node (libtensorflow) backend 'tensorflow'
//   wasm @tensorflow/tfjs-backend-wasm, SIMD, multi-threaded in Node (wasm-threads.ts), with
//        the training kernels it lacks or runs slowly (wasm-kernels.ts, simd/kernels.c)
//   cpu  plain JS
// ENGINE=gpu|node|wasm|cpu (or the argument) forces one; a forced engine that cannot load
// throws EngineUnavailableError instead of quietly falling back. WASM_THREADS=n sets the
// wasm thread count (default: one per core); WASM_RELAXED_SIMD=0 turns off fused multiply-add.
// The variables are read by lib/config.ts: callers pass their Config (or an engine name);
// without one, initEngine asks config.ts for the environment's settings.
//
// Training steps should run ReLU -> BatchNorm -> Dropout through reluBatchNormDropout
// (ops.ts): one fused op with a hand-written gradient, on every engine.
import * as tf from '@tensorflow/tfjs';
import { ENGINE_NAMES, type EngineInfo, type EngineName } from './types.ts';
import { ConfigError, loadEngineSettings, type EngineSettings } from '../lib/config.ts';
import { startSimdThreads, useRelaxedSimd } from './simd.ts';
import type { WasmBackend } from './wasm-heap.ts';
import { registerWasmTrainingKernels } from './wasm-kernels.ts';
import { prepareWasmBackend, wasmThreadsInUse } from './wasm-threads.ts';

export type { EngineInfo, EngineName } from './types.ts';
export { ENGINE_NAMES } from './types.ts';
export { reluBatchNormDropout, type BatchNormTrainOptions, type BatchNormTrainResult } from './ops.ts';

export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
  readonly engine: EngineName | string;
  constructor(engine: EngineName | string, message: string) {
    super(message);
    this.engine = engine;
  }
}

const FIX: Record<EngineName, string> = {
  gpu: 'install it with `npm install @tensorflow/tfjs-node-gpu` on a machine with CUDA 11.2 + cuDNN 8.1, or pick another engine (ENGINE=wasm)',
  node: 'install it with `npm install @tensorflow/tfjs-node` (needs a prebuilt libtensorflow for this platform), or pick another engine (ENGINE=wasm)',
  wasm: 'reinstall @tensorflow/tfjs-backend-wasm (its dist/*.wasm files must be present), or use ENGINE=cpu',
  cpu: 'the cpu backend ships with @tensorflow/tfjs; reinstall it',
};

let current: EngineInfo | undefined;
let pending: Promise<EngineInfo> | undefined;

/** The active engine's label (e.g. "wasm-simd"), or "uninitialised" before initEngine. */
export let engineLabel = 'uninitialised';

/**
 * Initialises tfjs on the requested engine (argument, else env ENGINE, else the fastest
 * that loads). Idempotent: repeated calls return the same EngineInfo; asking for a
 * different engine later switches to it.
 */
export async function initEngine(requested: EngineName | 'auto' | EngineSettings = 'auto'): Promise<EngineInfo> {
  settings = resolveRequest(requested);
  const wanted = settings.engine;
  if (current && (wanted === 'auto' || wanted === current.name)) return current;
  // Serialise concurrent calls: the backend switch is global state.
  // An earlier call's failure was already reported to that caller; this one only waits its turn.
  const run = (pending ?? Promise.resolve()).catch(() => undefined).then(() => {
    if (current && (wanted === 'auto' || wanted === current.name)) return current;
    return wanted === 'auto' ? initAuto() : initForced(wanted);
  });
  pending = run;
  return run;
}

/** The settings of the last initEngine call (the wasm loader reads its thread count here). */
let settings: EngineSettings | undefined;

function resolveRequest(requested: EngineName | 'auto' | EngineSettings): EngineSettings {
  if (typeof requested === 'object') return requested;
  let fromEnv: EngineSettings;
  try {
    fromEnv = loadEngineSettings();
  } catch (error) {
    if (!(error instanceof ConfigError) || error.variable !== 'ENGINE') throw error;
    const name = process.env.ENGINE?.trim() ?? '';
    throw new EngineUnavailableError(name, `ENGINE=${name} is not an engine; use one of ${ENGINE_NAMES.join(', ')} or auto`);
  }
  return requested === 'auto' ? fromEnv : { ...fromEnv, engine: requested };
}

async function initAuto(): Promise<EngineInfo> {
  for (const name of ENGINE_NAMES) {
    try {
      return await initForced(name);
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
    }
  }
  throw new EngineUnavailableError('auto', 'no tfjs engine could be initialised (tried gpu, node, wasm, cpu)');
}

async function initForced(name: EngineName): Promise<EngineInfo> {
  let info: EngineInfo;
  try {
    info = await LOADERS[name]();
  } catch (error) {
    if (error instanceof EngineUnavailableError) throw error;
    throw new EngineUnavailableError(name, `engine '${name}' failed to load: ${describe(error)}; ${FIX[name]}`);
  }
  current = info;
  engineLabel = info.label;
  return info;
}

const LOADERS: Record<EngineName, () => Promise<EngineInfo>> = {
  gpu: () => loadTfjsNode('gpu', '@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu'),
  node: () => loadTfjsNode('node', '@tensorflow/tfjs-node', 'tfjs-node'),
  wasm: async () => {
    registerWasmTrainingKernels();
    useRelaxedSimd(settings!.wasmRelaxedSimd);
    if (!wasmPrepared) {
      prepareWasmBackend(settings!.wasmThreads);
      wasmPrepared = true;
    }
    await switchTo('wasm');
    await startSimdThreads(tf.backend() as unknown as WasmBackend, wasmThreadsInUse());
    const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
    const threads = wasmThreadsInUse();
    const label = `wasm${simd ? '-simd' : ''}${threads > 1 ? '-mt' : ''}`;
    return { name: 'wasm', backend: 'wasm', label, threads };
  },
  cpu: async () => {
    await switchTo('cpu');
    return { name: 'cpu', backend: 'cpu', label: 'cpu', threads: 1 };
  },
};

let wasmPrepared = false;

async function loadTfjsNode(name: EngineName, specifier: string, label: string): Promise<EngineInfo> {
  try {
    // A variable specifier: these optional packages are usually not installed.
    const moduleName: string = specifier;
    await import(moduleName);
  } catch (error) {
    throw new EngineUnavailableError(name, `engine '${name}' needs ${specifier}, which could not be loaded (${describe(error)}); ${FIX[name]}`);
  }
  await switchTo('tensorflow');
  return { name, backend: 'tensorflow', label };
}

async function switchTo(backend: string): Promise<void> {
  const ok = await tf.setBackend(backend);
  if (!ok || tf.getBackend() !== backend) throw new Error(`tf.setBackend('${backend}') did not succeed`);
  await tf.ready();
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : typeof error === 'object' && error && 'message' in error ? String(error.message) : String(error);
  return text.split('\n')[0] ?? text;
}
