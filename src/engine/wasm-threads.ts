// Loads @tensorflow/tfjs-backend-wasm for Node: the SIMD build, or the threaded SIMD build
// when more than one thread is wanted.
//
// tfjs disables the threaded build under Node (tfjs issue #3830) because its loader hands
// Emscripten blob: URLs, which worker_threads cannot start. The Emscripten output itself
// supports Node, so we start it ourselves: the pthread worker script is written to a temp
// file, the main script is the package's own wasm-out file, and the core count the C++ side
// reads at start-up (it halves navigator.hardwareConcurrency, capping 2 cores at 1 thread)
// is answered so that XNNPACK's pool gets the threads we ask for.
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
const distDir = path.join(packageDir, 'dist');
const WASM_PRIORITY = 2;

/**
 * Points tfjs at the package's .wasm files and, for threads > 1, swaps the 'wasm'
 * backend's factory for the threaded build. Must run before the wasm backend initialises.
 */
export function prepareWasmBackend(threads: number): void {
  // Someone already started the wasm backend: keep it (replacing it would drop its tensors).
  if ((tf.engine().registry as Record<string, unknown>).wasm != null) return;
  setWasmPaths(distDir + path.sep);
  if (threads <= 1) return;
  const singleThreaded = tf.findBackendFactory('wasm');
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      try {
        return await createThreadedBackend(threads);
      } catch (error) {
        if (!singleThreaded) throw error;
        process.emitWarning(`threaded wasm backend failed to start (${(error as Error).message}); using one thread`);
        return singleThreaded();
      }
    },
    WASM_PRIORITY,
  );
}

/** Threads actually used by XNNPACK (after the backend is initialised). */
export function wasmThreadsInUse(): number {
  return getThreadsCount();
}

interface EmscriptenModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  tfjs?: Record<string, unknown>;
  PThread: { runningWorkers: { unref(): void }[]; unusedWorkers: { terminate(): Promise<number> }[] };
}

async function createThreadedBackend(threads: number): Promise<tf.KernelBackend> {
  const factory = require(path.join(packageDir, 'wasm-out/tfjs-backend-wasm-threaded-simd.js')) as (
    config: Record<string, unknown>,
  ) => Promise<EmscriptenModule>;
  const workerFile = writePthreadWorkerScript();
  const wasmFile = path.join(distDir, 'tfjs-backend-wasm-threaded-simd.wasm');

  const module = await factory({
    locateFile: (file: string) => {
      if (!file.endsWith('.worker.js')) return file.endsWith('.wasm') ? wasmFile : file;
      useCleanWorkerFlags();
      return workerFile;
    },
    // Each pthread worker evaluates this file to get the module factory.
    mainScriptUrlOrBlob: path.join(packageDir, 'wasm-out/tfjs-backend-wasm-threaded-simd.js'),
    instantiateWasm: (
      imports: { env: Record<string, unknown> },
      receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ) => {
      // The C++ side uses half the reported cores (it assumes hyper-threading).
      imports.env.emscripten_num_logical_cores = () => 2 * threads;
      WebAssembly.instantiate(fs.readFileSync(wasmFile), imports as WebAssembly.Imports).then(
        ({ instance, module: compiled }) => receive(instance, compiled),
      );
      return {};
    },
  });
  // The same bridge tfjs-backend-wasm's own loader installs.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  // Emscripten pre-starts a pool of 8 pthread workers, each a Node worker thread with its own
  // V8 heap (~12 MB RSS); by now XNNPACK's pool has taken the `threads - 1` it runs on, so the
  // rest only cost memory (~85 MB with 2 threads). Emscripten starts a new one should a later
  // pthread_create find the pool empty.
  for (const worker of module.PThread.unusedWorkers.splice(0)) void worker.terminate();
  // XNNPACK's pool threads run for the life of the process; Emscripten refs their workers,
  // which would keep Node from exiting when the program is done.
  for (const worker of module.PThread.runningWorkers) worker.unref();
  return backend;
}

/**
 * Emscripten starts each pthread with `new Worker(file)` after setting the global Worker to
 * worker_threads.Worker; it is asked for the file just before. Workers inherit the parent's
 * node flags by default, and some break them (--input-type, loaders that need the main
 * thread); the worker script is plain CommonJS, so it gets none.
 */
function useCleanWorkerFlags(): void {
  const g = globalThis as unknown as { Worker?: new (file: string, options?: object) => object };
  const NodeWorker = g.Worker;
  if (!NodeWorker || (NodeWorker as unknown as { cleanFlags?: boolean }).cleanFlags) return;
  g.Worker = class extends NodeWorker {
    static cleanFlags = true;
    constructor(file: string, options?: object) {
      super(file, { ...options, execArgv: [] });
    }
  };
}

/** Emscripten's pthread worker script, as a CommonJS file worker_threads can start. */
function writePthreadWorkerScript(): string {
  const { wasmWorkerContents } = require(path.join(packageDir, 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // The contents come from a template literal whose "\n" escapes became real newlines.
  const script = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `tfjs-wasm-pthread-worker-${hash}.cjs`);
  if (!fs.existsSync(file)) {
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, script);
    fs.renameSync(temp, file);
  }
  return file;
}
