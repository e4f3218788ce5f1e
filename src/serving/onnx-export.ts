// A served model as an ONNX file, for runtimes other than ours (onnxruntime,
// TensorRT, OpenVINO, …). The protobuf is written by hand: the model is one
// fixed graph of standard operators, so a generic protobuf library would add a
// dependency for a few dozen fields (names and numbers from onnx/onnx.proto3).
//
// Opset 13 (default domain), IR version 7. The graph takes what the service's
// signature states and gives what it gives (src/serving/signature.ts):
//   image [N,28,28,1] FP32, pixel values 0–255, white digit on black
//   → Reshape [N,1,28,28] (NHWC with one channel is NCHW's memory order)
//   → Mul 1/(255·std), Add −mean/std            (the model's normalisation)
//   → 5 × (Conv 3×3 valid + bias, Relu), AveragePool 2×2 after the third
//   → GlobalAveragePool, Flatten, Gemm (head)   → logits
//   → Softmax → probabilities [N,10] FP32;  ArgMax → label [N] INT64
// BatchNorm is folded exactly as for serving (src/serving/fold.ts):
// each BN into the next conv, the last into the head.
import { CLASS_NAMES } from '../data/types.ts';
import { PACKAGE } from '../lib/package-info.ts';
import { CONV_BLOCKS, IMAGE_SIDE, NUM_CLASSES } from '../model/spec.ts';
import type { FoldedModel } from './fold.ts';
import type { FoldedWeights, PlainTensor } from './folded-forward.mjs';
import { normalizationOf, type ServingMetadata } from './loaded-model.ts';
import { INPUT_NAME, LABEL_NAME, PROBABILITIES_NAME } from './signature.ts';
import { ServiceError } from '../lib/errors.ts';

export const ONNX_OPSET = 13;
export const ONNX_IR_VERSION = 7;

// ─── protobuf wire format ───────────────────────────────────────────────────
const VARINT = 0;
const FIXED32 = 5;
const LENGTH_DELIMITED = 2;

/** A protobuf message under construction: fields appended in order. */
class Message {
  private readonly parts: Uint8Array[] = [];

  private push(bytes: number[] | Uint8Array): this {
    this.parts.push(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
    return this;
  }

  private key(field: number, wireType: number): this {
    return this.push(varint(BigInt((field << 3) | wireType)));
  }

  int(field: number, value: number | bigint): this {
    // int64 fields: negative values are sent as their 64-bit two's complement.
    return this.key(field, VARINT).push(varint(BigInt.asUintN(64, BigInt(value))));
  }

  float(field: number, value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    return this.key(field, FIXED32).push(bytes);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, LENGTH_DELIMITED).push(varint(BigInt(value.length))).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.encode());
  }

  encode(): Uint8Array {
    const total = this.parts.reduce((sum, part) => sum + part.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return bytes;
}

// ─── ONNX messages (field numbers from onnx.proto3) ─────────────────────────
const TensorDataType = { FLOAT: 1, INT64: 7 } as const;
const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

type Attribute = { name: string; int: number } | { name: string; ints: number[] } | { name: string; float: number };

function attribute(a: Attribute): Message {
  const m = new Message().string(1, a.name);
  if ('int' in a) return m.int(3, a.int).int(20, AttributeType.INT);
  if ('float' in a) return m.float(2, a.float).int(20, AttributeType.FLOAT);
  for (const v of a.ints) m.int(8, v);
  return m.int(20, AttributeType.INTS);
}

function node(opType: string, inputs: string[], outputs: string[], attributes: Attribute[] = []): Message {
  const m = new Message();
  for (const input of inputs) m.string(1, input);
  for (const output of outputs) m.string(2, output);
  m.string(3, `${outputs[0]}_${opType.toLowerCase()}`).string(4, opType);
  for (const a of attributes) m.message(5, attribute(a));
  return m;
}

function floatTensor(name: string, dims: number[], data: Float32Array): Message {
  const m = new Message();
  for (const d of dims) m.int(1, d);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return m.int(2, TensorDataType.FLOAT).string(8, name).bytes(9, raw);
}

function int64Tensor(name: string, values: number[]): Message {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return new Message().int(1, values.length).int(2, TensorDataType.INT64).string(8, name).bytes(9, raw);
}

/** A graph input or output: name, element type and shape ("N" is the symbolic batch dimension). */
function valueInfo(name: string, elemType: number, shape: (number | 'N')[]): Message {
  const dims = new Message();
  for (const d of shape) dims.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, elemType).message(2, dims);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** tfjs conv kernel [kh, kw, in, out] → ONNX [out, in, kh, kw]. */
function toOihw({ shape, data }: PlainTensor): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = data[((y * kw + x) * cin + i) * cout + o]!;
  return { dims: [cout, cin, kh, kw], data: out };
}

export interface OnnxExportOptions {
  weights: FoldedWeights;
  normalization: { mean: number; std: number };
  /** Recorded in the file's metadata_props (version, dataset, class labels, …). */
  metadata: Record<string, string>;
}

/** The ONNX ModelProto bytes of a folded seed net. */
export function exportOnnx({ weights, normalization, metadata }: OnnxExportOptions): Uint8Array {
  const nodes: Message[] = [];
  const initializers: Message[] = [];
  const constant = (name: string, value: number) => initializers.push(floatTensor(name, [], Float32Array.of(value)));

  initializers.push(int64Tensor('nchw_shape', [-1, 1, IMAGE_SIDE, IMAGE_SIDE]));
  constant('pixel_scale', 1 / (255 * normalization.std));
  constant('pixel_shift', -normalization.mean / normalization.std);
  nodes.push(node('Reshape', [INPUT_NAME, 'nchw_shape'], ['x_nchw']));
  nodes.push(node('Mul', ['x_nchw', 'pixel_scale'], ['x_scaled']));
  nodes.push(node('Add', ['x_scaled', 'pixel_shift'], ['x_normalized']));

  let h = 'x_normalized';
  CONV_BLOCKS.forEach((block, i) => {
    const kernel = toOihw(weights.kernels[i]!);
    initializers.push(floatTensor(`${block.name}_kernel`, kernel.dims, kernel.data));
    initializers.push(floatTensor(`${block.name}_bias`, weights.biases[i]!.shape, weights.biases[i]!.data));
    nodes.push(
      node('Conv', [h, `${block.name}_kernel`, `${block.name}_bias`], [`${block.name}_conv`], [
        { name: 'kernel_shape', ints: kernel.dims.slice(2) },
        { name: 'strides', ints: [1, 1] },
        { name: 'pads', ints: [0, 0, 0, 0] },
      ]),
    );
    nodes.push(node('Relu', [`${block.name}_conv`], [`${block.name}_relu`]));
    h = `${block.name}_relu`;
    if (block.poolAfter) {
      nodes.push(node('AveragePool', [h], [`${block.name}_pool`], [
        { name: 'kernel_shape', ints: [2, 2] },
        { name: 'strides', ints: [2, 2] },
      ]));
      h = `${block.name}_pool`;
    }
  });
  nodes.push(node('GlobalAveragePool', [h], ['pooled']));
  nodes.push(node('Flatten', ['pooled'], ['features'], [{ name: 'axis', int: 1 }]));
  initializers.push(floatTensor('head_kernel', weights.headKernel.shape, weights.headKernel.data));
  initializers.push(floatTensor('head_bias', weights.headBias.shape, weights.headBias.data));
  nodes.push(node('Gemm', ['features', 'head_kernel', 'head_bias'], ['logits']));
  nodes.push(node('Softmax', ['logits'], [PROBABILITIES_NAME], [{ name: 'axis', int: 1 }]));
  nodes.push(node('ArgMax', ['logits'], [LABEL_NAME], [{ name: 'axis', int: 1 }, { name: 'keepdims', int: 0 }]));

  const graph = new Message();
  for (const n of nodes) graph.message(1, n);
  graph.string(2, 'seed_net');
  for (const init of initializers) graph.message(5, init);
  graph.string(10, 'Input: pixel values 0–255, white digit on black, NHWC [N,28,28,1]. Outputs: softmax probabilities [N,10] and the arg-max label [N].');
  graph.message(11, valueInfo(INPUT_NAME, TensorDataType.FLOAT, ['N', IMAGE_SIDE, IMAGE_SIDE, 1]));
  graph.message(12, valueInfo(PROBABILITIES_NAME, TensorDataType.FLOAT, ['N', NUM_CLASSES]));
  graph.message(12, valueInfo(LABEL_NAME, TensorDataType.INT64, ['N']));

  const model = new Message()
    .int(1, ONNX_IR_VERSION)
    .string(2, 'digits-service')
    .string(3, PACKAGE.version)
    .message(7, graph)
    .message(8, new Message().string(1, '').int(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(metadata)) model.message(14, new Message().string(1, key).string(2, value));
  return model.encode();
}

/** A model that is not the seed network (only its graph is written), or whose weights cannot be folded. */
export class ModelNotExportableError extends ServiceError {
  readonly statusCode = 422;
  constructor(version: string, cause: unknown) {
    super(`model version ${version} cannot be exported as ONNX: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** A folded seed-net-family model (fold.ts) with its metadata.json → ONNX bytes. */
export function seedNetToOnnx(model: FoldedModel, metadata: ServingMetadata): Uint8Array {
  let normalization: { mean: number; std: number };
  try {
    normalization = normalizationOf(metadata);
  } catch (error) {
    throw new ModelNotExportableError(metadata.version, error);
  }
  return exportOnnx({
    weights: model.weights,
    normalization,
    metadata: {
      version: metadata.version,
      dataset: metadata.dataset,
      testAccuracy: String(metadata.testAccuracy),
      classLabels: JSON.stringify(CLASS_NAMES[metadata.dataset]),
      input: 'pixel values 0-255, white digit on black, NHWC [N,28,28,1]',
      normalization: JSON.stringify(normalization),
    },
  });
}
