// Loads simd/kernels*.wasm (see simd/kernels.c) onto the wasm backend's own memory, so its
// kernels read and write tfjs tensors in place. One context per backend instance.
//
// With the threaded tfjs build the heap is shared memory, and the context also runs helper
// worker threads with their own instance of the kernels on the same heap. `parallel` posts a
// list of jobs (slices of the work) through a shared control block with Atomics, not
// messages, so a dispatch costs microseconds; the calling thread and the helpers claim jobs
// one at a time until none are left. A helper that the OS has not scheduled (another process
// busy on the other core) just claims nothing: the caller does the work instead of waiting.
import fs from 'node:fs';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { WasmBackend } from './wasm-heap.ts';

export interface SimdKernels {
  relu_stats(z: number, pixels: number, channels: number, sum: number, sumsq: number): void;
  relu_bn_dropout(z: number, y: number, pixels: number, channels: number, scale: number, shift: number, key: number, threshold: number, first: number, mask: number): void;
  relu_bn_dropout_grad_sums(dy: number, z: number, mask: number, pixels: number, channels: number, invKeep: number, dbeta: number, dga: number): void;
  relu_bn_dropout_grad_apply(dy: number, z: number, mask: number, dz: number, pixels: number, channels: number, a: number, b: number, c: number, invKeep: number): void;
  conv2d_filter_grad(x: number, dy: number, dw: number, batch: number, inH: number, inW: number, channels: number, outH: number, outW: number, outChannels: number, kh: number, kw: number, top: number, left: number): void;
  conv2d_valid(input: number, filter: number, out: number, batch: number, inH: number, inW: number, channels: number, kh: number, kw: number, outChannels: number): void;
  pad_nhwc(input: number, out: number, batch: number, h: number, w: number, channels: number, top: number, bottom: number, left: number, right: number): void;
  avg_pool_grad_tiled(dy: number, dx: number, batch: number, inH: number, inW: number, channels: number, k: number): void;
}

export type KernelName = keyof SimdKernels;

/** Kernels bound to one backend's heap. */
export interface SimdContext {
  kernels: SimdKernels;
  /** Threads `parallel` spreads work over (1 = the calling thread only). */
  threads: number;
  /** Runs kernel `name` once per argument list, spread over the threads (≤ 64 jobs). */
  parallel(name: KernelName, jobs: number[][]): void;
  /** [first, count] slices of [0, total) for `parallel`: a few per thread, to balance load. */
  slices(total: number, minimum?: number): [number, number][];
  /**
   * Slices for reductions (each summed on its own, the partial sums then added in order):
   * the same on every thread count, so the sums, and so training runs, come out
   * bit-identical on 1 thread or 16.
   */
  reductionSlices(total: number, minimum?: number): [number, number][];
  /** Byte offset of a reusable scratch block of at least `bytes` bytes; one block per slot. */
  scratch(bytes: number, slot?: number): number;
  heapBuffer(): ArrayBufferLike;
}

interface EmscriptenHeapModule {
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

const KERNEL_NAMES: KernelName[] = [
  'relu_stats', 'relu_bn_dropout', 'relu_bn_dropout_grad_sums', 'relu_bn_dropout_grad_apply',
  'conv2d_filter_grad', 'conv2d_valid', 'pad_nhwc', 'avg_pool_grad_tiled',
];
const MAX_ARGS = 16;
const MAX_JOBS = 64;
/** Parts of every reduction, whatever the thread count (see reductionSlices). */
const REDUCTION_PARTS = 16;
// Control block: Int32 header, then MAX_JOBS rows of MAX_ARGS Float64 arguments.
//   [0] generation (bumped per dispatch; helpers wait on it)
//   [1] claim counter: generation << 8 | next job index (-1 while a dispatch is set up)
//   [2] job count  [3] jobs done  [4] kernel index  [5] argument count
const HEADER_BYTES = 32;
const CONTROL_BYTES = HEADER_BYTES + MAX_JOBS * MAX_ARGS * 8;

/** Claims and runs jobs of dispatch `generation` until none are left (shared with the helpers). */
function claimJobs(header: Int32Array, args: Float64Array, generation: number, kernel: (...a: number[]) => void): void {
  for (;;) {
    const claim = Atomics.load(header, 1);
    if (claim >>> 8 !== (generation & 0xffffff) || (claim & 0xff) >= header[2]!) return;
    if (Atomics.compareExchange(header, 1, claim, claim + 1) !== claim) continue;
    const row = (claim & 0xff) * MAX_ARGS;
    kernel(...args.subarray(row, row + header[5]!));
    Atomics.add(header, 3, 1);
    Atomics.notify(header, 3);
  }
}

const contexts = new WeakMap<object, SimdContext | null>();
const compiled = new Map<string, WebAssembly.Module>();

function compile(file: string): WebAssembly.Module {
  let module = compiled.get(file);
  if (!module) {
    module = new WebAssembly.Module(fs.readFileSync(new URL(`./simd/${file}`, import.meta.url)));
    compiled.set(file, module);
  }
  return module;
}

let relaxedSimdWanted = true;

/** Whether kernels compiled from now on may use the relaxed-SIMD build (WASM_RELAXED_SIMD). */
export function useRelaxedSimd(wanted: boolean): void {
  relaxedSimdWanted = wanted;
}

/**
 * The relaxed-SIMD build (fused multiply-add: about 1.5x faster convolutions) where the
 * runtime takes it, else the plain one. Node 20's V8 has relaxed SIMD behind a flag, which
 * can be switched on before the module is compiled; WASM_RELAXED_SIMD=0 (config.wasmRelaxedSimd,
 * passed on by initEngine through useRelaxedSimd) opts out.
 */
function kernelsModule(shared: boolean): WebAssembly.Module {
  const suffix = shared ? '-shared.wasm' : '.wasm';
  if (relaxedSimdWanted) {
    for (const flag of [undefined, '--experimental-wasm-relaxed-simd']) {
      try {
        if (flag) v8.setFlagsFromString(flag);
        return compile(`kernels-relaxed${suffix}`);
      } catch {
        // Not available (yet): switch the flag on, or use the plain build.
      }
    }
  }
  return compile(`kernels${suffix}`);
}

/** The SIMD kernels for this wasm backend, or null when its memory cannot be reached. */
export function simdFor(backend: WasmBackend): SimdContext | null {
  let context = contexts.get(backend);
  if (context === undefined) {
    context = createContext(backend, 1);
    contexts.set(backend, context);
  }
  return context;
}

/**
 * Starts the helper threads for this backend (threads − 1 of them; shared heaps only).
 * Resolves once they are ready; later simdFor calls return the threaded context.
 */
export async function startSimdThreads(backend: WasmBackend, threads: number): Promise<SimdContext | null> {
  const existing = contexts.get(backend);
  if (existing && existing.threads >= threads) return existing;
  const context = createContext(backend, threads);
  contexts.set(backend, context);
  if (context && 'ready' in context) await (context as SimdContext & { ready: Promise<void> }).ready;
  return context;
}

function createContext(backend: WasmBackend, threads: number): SimdContext | null {
  const module = backend.wasm as unknown as EmscriptenHeapModule;
  const memory = module.wasmMemory ?? module.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const wasmModule = kernelsModule(shared);
  const kernels = new WebAssembly.Instance(wasmModule, { env: { memory } }).exports as unknown as SimdKernels;
  const helpers = shared ? Math.max(0, threads - 1) : 0;

  const scratchBlocks = new Map<number, { pointer: number; bytes: number }>();
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const header = new Int32Array(control, 0, 8);
  const args = new Float64Array(control, HEADER_BYTES, MAX_JOBS * MAX_ARGS);
  const ready = helpers > 0 ? startHelpers(wasmModule, memory, control, helpers) : Promise.resolve();
  let generation = 0;

  return {
    kernels,
    threads: helpers + 1,
    ready,
    heapBuffer: () => module.HEAPU8.buffer,
    slices: (total: number, minimum = 1) => splitRange(total, helpers === 0 ? 1 : 4 * (helpers + 1), minimum),
    reductionSlices: (total: number, minimum = 1) => splitRange(total, REDUCTION_PARTS, minimum),
    scratch(bytes: number, slot = 0): number {
      const block = scratchBlocks.get(slot);
      if (block && block.bytes >= bytes) return block.pointer;
      if (block) module._free(block.pointer);
      const size = Math.max(bytes, 16 * 1024);
      const pointer = module._malloc(size) >>> 0;
      scratchBlocks.set(slot, { pointer, bytes: size });
      return pointer;
    },
    parallel(name: KernelName, jobs: number[][]): void {
      const kernel = kernels[name] as (...a: number[]) => void;
      if (helpers === 0 || jobs.length === 1) {
        for (const job of jobs) kernel(...job);
        return;
      }
      if (jobs.length > MAX_JOBS) throw new Error(`simd.parallel: ${jobs.length} jobs, at most ${MAX_JOBS}`);
      // Close claims first: a late helper must not take a job while its arguments change.
      Atomics.store(header, 1, -1);
      jobs.forEach((job, j) => args.set(job, j * MAX_ARGS));
      header[2] = jobs.length;
      header[3] = 0;
      header[4] = KERNEL_NAMES.indexOf(name);
      header[5] = jobs[0]!.length;
      generation = (generation % 0xfffffe) + 1; // never 0xffffff, the tag of a closed counter
      Atomics.store(header, 1, generation << 8);
      Atomics.store(header, 0, generation);
      Atomics.notify(header, 0);
      claimJobs(header, args, generation, kernel);
      for (let done = Atomics.load(header, 3); done < jobs.length; done = Atomics.load(header, 3)) {
        Atomics.wait(header, 3, done);
      }
    },
  } as SimdContext & { ready: Promise<void> };
}

/** Splits [0, total) into up to `parts` [first, count] ranges of at least `minimum` each. */
function splitRange(total: number, parts: number, minimum = 1): [number, number][] {
  const n = Math.max(1, Math.min(parts, Math.floor(total / minimum)));
  const ranges: [number, number][] = [];
  for (let t = 0, first = 0; t < n; t++) {
    const end = Math.round(((t + 1) * total) / n);
    ranges.push([first, end - first]);
    first = end;
  }
  return ranges;
}

// The helper thread: instantiate the kernels on the shared heap, then claim posted jobs forever.
const HELPER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control, names } = workerData;
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
const header = new Int32Array(control, 0, 8);
const args = new Float64Array(control, ${HEADER_BYTES}, ${MAX_JOBS * MAX_ARGS});
const claimJobs = ${claimJobs.toString().replace(/MAX_ARGS/g, String(MAX_ARGS))};
parentPort.postMessage('ready');
let generation = 0;
for (;;) {
  Atomics.wait(header, 0, generation);
  generation = Atomics.load(header, 0);
  claimJobs(header, args, generation, kernels[names[header[4]]]);
}
`;

async function startHelpers(module: WebAssembly.Module, memory: WebAssembly.Memory, control: SharedArrayBuffer, count: number) {
  const started = Array.from({ length: count }, () => {
    const worker = new Worker(HELPER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { module, memory, control, names: KERNEL_NAMES },
    });
    return new Promise<void>((resolve, reject) => {
      worker.once('message', () => {
        worker.unref(); // helpers never keep the process alive
        resolve();
      });
      worker.once('error', reject);
    });
  });
  await Promise.all(started);
}
