// Typed access to the internals of @tensorflow/tfjs-backend-wasm that our kernels need:
// the backend's tensor table, the wasm heap, and the backend's own kernels.
import * as tf from '@tensorflow/tfjs';

export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

export interface WasmBackend extends tf.KernelBackend {
  dataIdMap: { get(dataId: tf.DataId): WasmTensorData; has(dataId: tf.DataId): boolean };
  wasm: { HEAPU8: Uint8Array; HEAPF32: Float32Array; HEAP32: Int32Array };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

export type Attrs = Record<string, unknown>;

/** Runs one of the wasm backend's registered kernels directly (no tape, no engine bookkeeping). */
export function runWasmKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Attrs = {},
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (kernel == null) throw new Error(`wasm backend has no '${kernelName}' kernel`);
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

/** Frees an intermediate created by runWasmKernel/makeOutput. */
export function release(backend: WasmBackend, info: tf.TensorInfo): void {
  backend.disposeData(info.dataId);
}

/**
 * The heap as Float32Array plus the float offset of each tensor. Read it after the
 * kernel's outputs are allocated: an allocation may grow (and so replace) the heap.
 */
export function f32View(backend: WasmBackend, ...infos: tf.TensorInfo[]): { heap: Float32Array; offsets: number[] } {
  const heap = backend.wasm.HEAPF32;
  return { heap, offsets: infos.map((info) => backend.dataIdMap.get(info.dataId).memoryOffset >>> 2) };
}

export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}
