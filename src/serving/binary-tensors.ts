// The Open Inference Protocol's binary tensor data extension (KServe, Triton:
// "binary_tensor_data"): a request body is a JSON inference request followed by
// raw tensor bytes, the JSON's length given in the Inference-Header-Content-Length
// header. An input whose data is in the binary part says so with
// "parameters": {"binary_data_size": <bytes>} and has no "data"; the binary parts
// follow the JSON in the order of the inputs that have one. Tensor bytes are
// little-endian, row-major, without padding. Outputs come back the same way when
// asked for with "binary_data": true on the output (or "binary_data_output": true
// on the request). Callers that hold tensors skip PNG and base64 entirely.
import { InvalidPredictRequestError } from './errors.ts';
import { parseJsonBody } from './instances.ts';

export const INFERENCE_HEADER_LENGTH = 'inference-header-content-length';
/** The name servers list under "extensions" in GET /v2. */
export const BINARY_EXTENSION = 'binary_tensor_data';

/** A request body split into its JSON inference request and the raw bytes after it (absent without the header). */
export interface InferBody {
  json: unknown;
  binary?: Buffer;
}

/** Splits a body by its Inference-Header-Content-Length header; without the header the whole body is JSON. */
export function splitInferBody(body: Buffer, headerLength: string | string[] | undefined): InferBody {
  if (headerLength === undefined) return { json: body.length === 0 ? undefined : parseJsonBody(body) };
  const text = Array.isArray(headerLength) ? headerLength.join(',') : headerLength;
  const length = /^\d{1,12}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(length) || length === 0 || length > body.length) {
    throw new InvalidPredictRequestError(
      `Inference-Header-Content-Length is ${JSON.stringify(text)}; it must be the byte length of the JSON inference request at the start of the body (1–${body.length})`,
    );
  }
  return { json: parseJsonBody(body.subarray(0, length)), binary: body.subarray(length) };
}

/** Reads `parameters.binary_data_size` if present: a byte count, or undefined when the tensor is in JSON. */
export function binaryDataSize(parameters: Record<string, unknown> | undefined, what: string): number | undefined {
  const size = parameters?.binary_data_size;
  if (size === undefined) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidPredictRequestError(`${what}.binary_data_size must be a non-negative integer (bytes), got ${JSON.stringify(size)}`);
  }
  return size;
}

/** One output tensor's values, to be sent as JSON data or as binary bytes. */
export interface OutputTensor {
  name: string;
  shape: number[];
  datatype: 'FP32' | 'INT64';
  values: Float32Array | BigInt64Array;
}

/** Little-endian bytes of a tensor (every platform Node runs on here is little-endian; checked once). */
export function tensorBytes(values: Float32Array | BigInt64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('binary tensors assume a little-endian host');

/**
 * A response whose binary outputs follow the JSON: the bytes to send and the value
 * of the Inference-Header-Content-Length response header.
 */
export function binaryResponse(header: object, binaryParts: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...binaryParts]), headerLength: json.length };
}
