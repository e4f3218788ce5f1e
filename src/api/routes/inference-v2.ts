// The Open Inference Protocol (KServe V2 inference protocol) over HTTP/REST, as
// specified in kserve/open-inference-protocol, specification/protocol/inference_rest.md
// (protocol version 2.0; https://kserve.github.io/website/docs/reference/oip/data-plane):
//   GET  /v2                                   server metadata
//   GET  /v2/health/live, /v2/health/ready     server liveness and readiness
//   GET  /v2/models/{name}[/versions/{v}]      model metadata (inputs, outputs: name, datatype, shape)
//   GET  /v2/models/{name}[/versions/{v}]/ready
//   POST /v2/models/{name}[/versions/{v}]/infer  tensor JSON in, tensor JSON out
// Errors are the protocol's `{"error": "<message>"}` (application/json), with the
// same statuses and messages the /v1 routes give as problem+json. Inference goes
// through the model's micro-batcher with /v1/predict's limits and rate limit.
// The binary tensor data extension (src/serving/binary-tensors.ts) carries input
// and output tensors as raw little-endian bytes after the JSON.
// Models are found only through ModelResolver (src/serving/model-resolver.ts).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BINARY_EXTENSION, INFERENCE_HEADER_LENGTH, binaryDataSize, binaryResponse, splitInferBody, tensorBytes, type InferBody, type OutputTensor } from '../../serving/binary-tensors.ts';
import { InvalidPredictRequestError, TooManyInstancesError, UnprocessableInputError } from '../../serving/errors.ts';
import { PIXEL_SCALES, applyScale, pixelValue, type PixelScale } from '../../serving/instances.ts';
import type { ModelResolver, ResolvedModel } from '../../serving/model-resolver.ts';
import { INPUT_NAME, LABEL_NAME, PROBABILITIES_NAME, signatureOf } from '../../serving/signature.ts';
import { IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES } from '../../model/spec.ts';
import { useProtocolJson } from '../plugins/protocol-json.ts';

export interface InferenceV2Options {
  resolver: ModelResolver;
  /** The server's name and version for GET /v2. */
  server: { name: string; version: string };
  /** Most images per request (PREDICT_MAX_INSTANCES): the batch dimension N. */
  maxInstances: number;
  bodyLimit: number;
  /** Requests per minute per client on /infer, shared setting with /v1/predict (PREDICT_RATE_LIMIT); 0 = off. */
  rateLimitPerMinute: number;
  onPredictions?: (model: { name: string; version: string }, count: number) => void;
  /** Seconds each /infer took, by model name (metrics). */
  onLatency?: (name: string, seconds: number) => void;
}

/** The tensor shapes an image batch may be sent in; NCHW and NHWC with one channel share one memory order. */
const S = IMAGE_SIDE;
const ACCEPTED_SHAPES = `[N,${S},${S},1] (NHWC), [N,1,${S},${S}] (NCHW), [N,${S},${S}] or [N,${IMAGE_PIXELS}]`;
const OUTPUT_NAMES = [PROBABILITIES_NAME, LABEL_NAME] as const;
type OutputName = (typeof OUTPUT_NAMES)[number];
/** The platform string names framework and format, as the protocol's examples do (e.g. "tensorflow_savedmodel"). */
const PLATFORM = 'tensorflowjs_layers';

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function checkFields(value: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw new InvalidPredictRequestError(`unknown field ${JSON.stringify(unknown)} in ${what}; allowed: ${allowed.join(', ')}`);
}

function readScale(parameters: unknown, what: string): PixelScale | undefined {
  if (parameters === undefined) return undefined;
  if (!isObject(parameters)) throw new InvalidPredictRequestError(`${what} must be an object`);
  const scale = parameters.scale;
  if (scale === undefined) return undefined;
  if (typeof scale !== 'string' || !(PIXEL_SCALES as readonly string[]).includes(scale)) {
    throw new InvalidPredictRequestError(`${what}.scale must be "pixel" (values 0–255) or "unit" (values 0–1), got ${JSON.stringify(scale)}`);
  }
  return scale as PixelScale;
}

/** Batch size N from a shape, after checking it is one of ACCEPTED_SHAPES. */
function batchSize(shape: unknown, maxInstances: number): number {
  const valid = Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
  if (!valid) throw new InvalidPredictRequestError(`inputs[0].shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  const dims = (shape as number[]).slice(1).join(',');
  if (![`${S},${S},1`, `1,${S},${S}`, `${S},${S}`, `${IMAGE_PIXELS}`].includes(dims)) {
    throw new InvalidPredictRequestError(`inputs[0].shape is ${JSON.stringify(shape)}; this model takes ${ACCEPTED_SHAPES}`);
  }
  const n = (shape as number[])[0]!;
  if (n === 0) throw new UnprocessableInputError('inputs[0].shape has a batch size of 0; send at least one image');
  if (n > maxInstances) throw new TooManyInstancesError(n, maxInstances);
  return n;
}

/**
 * Tensor data, flat or nested in row-major order (the protocol allows both), as
 * exactly `count` numbers. Walks with an explicit stack; never reads more than `count` values.
 */
function flattenData(data: unknown, count: number, datatype: 'UINT8' | 'FP32', max: number): Float32Array {
  if (!Array.isArray(data)) throw new InvalidPredictRequestError('inputs[0].data must be an array');
  const out = new Float32Array(count);
  let n = 0;
  const stack: [unknown[], number][] = [[data, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [array, index] = top;
    if (index >= array.length) {
      stack.pop();
      continue;
    }
    top[1] = index + 1;
    const value = array[index];
    if (Array.isArray(value)) {
      stack.push([value, 0]);
      continue;
    }
    if (n >= count) throw new InvalidPredictRequestError(`inputs[0].data has more than the ${count} values its shape declares`);
    const v = pixelValue(value, () => `inputs[0].data[${n}]`, max);
    if (datatype === 'UINT8' && !Number.isInteger(v)) throw new InvalidPredictRequestError(`inputs[0].data[${n}] is ${v}; UINT8 values are integers 0–255`);
    out[n++] = v;
  }
  if (n !== count) throw new InvalidPredictRequestError(`inputs[0].data has ${n} values; its shape declares ${count}`);
  return out;
}

/** A boolean parameter of the binary extension (`binary_data`, `binary_data_output`), if given. */
function readFlag(parameters: unknown, key: string, what: string): boolean | undefined {
  if (!isObject(parameters) || parameters[key] === undefined) return undefined;
  if (typeof parameters[key] !== 'boolean') throw new InvalidPredictRequestError(`${what}.${key} must be true or false, got ${JSON.stringify(parameters[key])}`);
  return parameters[key];
}

/** An input tensor sent as binary bytes (checked against its shape and datatype) → `count` values. */
function binaryData(binary: Buffer | undefined, size: number, count: number, datatype: 'UINT8' | 'FP32', max: number, hasData: boolean): Float32Array {
  if (binary === undefined) {
    throw new InvalidPredictRequestError(
      'inputs[0] declares "binary_data_size" but the body has no binary part: send the JSON length in the Inference-Header-Content-Length header and the tensor bytes after the JSON',
    );
  }
  if (hasData) throw new InvalidPredictRequestError('inputs[0] has both "data" and "binary_data_size"; send the tensor in one of them');
  const expected = count * (datatype === 'UINT8' ? 1 : 4);
  if (size !== expected) {
    throw new InvalidPredictRequestError(`inputs[0].parameters.binary_data_size is ${size} bytes; its shape and datatype ${datatype} make ${expected} bytes`);
  }
  if (binary.length !== size) {
    throw new InvalidPredictRequestError(`the body has ${binary.length} bytes after the JSON; inputs[0].parameters.binary_data_size declares ${size}`);
  }
  if (datatype === 'UINT8') return Float32Array.from(binary);
  // A copy: the body's bytes need not be 4-byte aligned.
  const values = new Float32Array(new Uint8Array(binary).buffer);
  for (let i = 0; i < values.length; i++) pixelValue(values[i], () => `inputs[0] binary value ${i}`, max);
  return values;
}

interface InferRequest {
  id?: string;
  images: Float32Array[];
  outputs: { name: OutputName; binary: boolean }[];
}

/**
 * Checks an inference request object against the protocol and this model's
 * signature; `binary` is the body's bytes after the JSON (binary tensor data extension).
 */
export function readInferRequest(body: unknown, maxInstances: number, binary?: Buffer): InferRequest {
  if (!isObject(body)) throw new InvalidPredictRequestError('the body must be an inference request object with "inputs"');
  checkFields(body, ['id', 'parameters', 'inputs', 'outputs'], 'the inference request');
  if (body.id !== undefined && typeof body.id !== 'string') throw new InvalidPredictRequestError('"id" must be a string');
  const requestScale = readScale(body.parameters, 'parameters');
  const binaryOutputs = readFlag(body.parameters, 'binary_data_output', 'parameters') ?? false;
  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw new InvalidPredictRequestError(`"inputs" must be an array with one tensor, "${INPUT_NAME}"`);
  }
  const input: unknown = inputs[0];
  if (!isObject(input)) throw new InvalidPredictRequestError('inputs[0] must be a tensor object {name, shape, datatype, data}');
  checkFields(input, ['name', 'shape', 'datatype', 'parameters', 'data'], 'inputs[0]');
  if (input.name !== INPUT_NAME) throw new InvalidPredictRequestError(`inputs[0].name is ${JSON.stringify(input.name)}; this model's input is "${INPUT_NAME}"`);
  if (input.datatype !== 'UINT8' && input.datatype !== 'FP32') {
    throw new InvalidPredictRequestError(`inputs[0].datatype is ${JSON.stringify(input.datatype)}; send "FP32" or "UINT8"`);
  }
  const scale = readScale(input.parameters, 'inputs[0].parameters') ?? requestScale;
  if (input.datatype === 'UINT8' && scale === 'unit') throw new InvalidPredictRequestError('UINT8 data is 0–255; "scale": "unit" applies to FP32 only');
  const n = batchSize(input.shape, maxInstances);
  const max = scale === 'unit' ? 1 : 255;
  const size = binaryDataSize(isObject(input.parameters) ? input.parameters : undefined, 'inputs[0].parameters');
  if (size === undefined && binary !== undefined && binary.length > 0) {
    throw new InvalidPredictRequestError(`the body has ${binary.length} bytes after the JSON but inputs[0] declares no "binary_data_size"`);
  }
  const flat =
    size === undefined ? flattenData(input.data, n * IMAGE_PIXELS, input.datatype, max) : binaryData(binary, size, n * IMAGE_PIXELS, input.datatype, max, input.data !== undefined);
  const images = Array.from({ length: n }, (_, i) => {
    const image = flat.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);
    // UINT8 states its scale by its type; FP32 may be 0–1 floats sent by habit.
    applyScale(image, `image ${i} of inputs[0]`, input.datatype === 'UINT8' ? 'pixel' : scale, '"parameters": {"scale": "unit"} in the request or the input');
    return image;
  });

  let outputs = OUTPUT_NAMES.map((name) => ({ name, binary: binaryOutputs }));
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs) || body.outputs.length === 0) throw new InvalidPredictRequestError('"outputs" must be a non-empty array of {name}');
    outputs = body.outputs.map((output: unknown, i) => {
      if (!isObject(output)) throw new InvalidPredictRequestError(`outputs[${i}] must be an object {name}`);
      checkFields(output, ['name', 'parameters'], `outputs[${i}]`);
      readScale(output.parameters, `outputs[${i}].parameters`);
      if (!(OUTPUT_NAMES as readonly unknown[]).includes(output.name)) {
        throw new InvalidPredictRequestError(`outputs[${i}].name is ${JSON.stringify(output.name)}; this model's outputs are ${OUTPUT_NAMES.map((o) => `"${o}"`).join(', ')}`);
      }
      return { name: output.name as OutputName, binary: readFlag(output.parameters, 'binary_data', `outputs[${i}].parameters`) ?? binaryOutputs };
    });
  }
  return { ...(body.id !== undefined ? { id: body.id as string } : {}), images, outputs };
}

interface ModelParams {
  name: string;
  version?: string;
}

export async function inferenceV2Routes(app: FastifyInstance, options: InferenceV2Options): Promise<void> {
  const { resolver, maxInstances, bodyLimit } = options;
  const rateLimited = await useProtocolJson(app, { bodyLimit, rateLimitPerMinute: options.rateLimitPerMinute });
  // JSON, or JSON then tensor bytes (binary tensor data extension), as either media type.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit }, (request, body, done) => {
    try {
      done(null, splitInferBody(body as Buffer, request.headers[INFERENCE_HEADER_LENGTH]));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  /** Holds the model for the handler, then lets it go whatever happens. */
  const withModel = async <T>(params: ModelParams, use: (resolved: ResolvedModel) => Promise<T> | T): Promise<T> => {
    const resolved = await resolver.resolveModel(params.name, params.version);
    try {
      return await use(resolved);
    } finally {
      resolved.release();
    }
  };

  // Probes and server metadata are open; model routes take a predict or full key, like /v1/predict.
  const PUBLIC = { config: { access: 'public' } } as const;
  const MODEL_READ = { config: { access: 'predict' } } as const;
  app.get('/v2', PUBLIC, async () => ({ name: options.server.name, version: options.server.version, extensions: [BINARY_EXTENSION] }));
  app.get('/v2/health/live', PUBLIC, async () => ({ live: true }));
  // Ready when every served model is loaded; not ready is a non-2xx status (503, as KServe answers), with the body saying so.
  app.get('/v2/health/ready', PUBLIC, async (_request, reply) => {
    const ready = resolver.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const metadata = (params: ModelParams) =>
    withModel(params, async ({ name, model }) => {
      const signature = signatureOf({ dataset: model.info.dataset, normalization: model.normalization });
      return {
        name,
        versions: await resolver.versions(name),
        platform: PLATFORM,
        inputs: [{ name: signature.inputs[0].name, datatype: signature.inputs[0].datatype, shape: signature.inputs[0].shape }],
        outputs: signature.outputs.map(({ name: output, datatype, shape }) => ({ name: output, datatype, shape })),
        // Beyond the protocol's fields: the version answering, and the full signature (scale, polarity, labels).
        version: model.info.version,
        signature,
      };
    });
  app.get<{ Params: ModelParams }>('/v2/models/:name', MODEL_READ, async (request) => metadata(request.params));
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', MODEL_READ, async (request) => metadata(request.params));

  const ready = async (params: ModelParams, reply: FastifyReply) => {
    try {
      return await withModel(params, ({ name }) => ({ name, ready: true }));
    } catch (error) {
      // Known but not loaded yet (nothing published, or its version cannot load): not ready. Unknown names stay 404.
      if ((error as { statusCode?: number }).statusCode === 503) return reply.code(503).send({ name: params.name, ready: false });
      throw error;
    }
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', MODEL_READ, async (request, reply) => ready(request.params, reply));
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', MODEL_READ, async (request, reply) => ready(request.params, reply));

  const infer = async (params: ModelParams, body: InferBody | undefined, reply: FastifyReply) => {
    const started = process.hrtime.bigint();
    const inferRequest = readInferRequest(body?.json, maxInstances, body?.binary);
    return withModel(params, async ({ name, model }) => {
      const predictions = await model.predict(inferRequest.images);
      options.onPredictions?.({ name, version: model.info.version }, predictions.length);
      const n = predictions.length;
      const tensors: Record<OutputName, OutputTensor> = {
        [PROBABILITIES_NAME]: { name: PROBABILITIES_NAME, shape: [n, NUM_CLASSES], datatype: 'FP32', values: Float32Array.from(predictions.flatMap((p) => p.probabilities)) },
        [LABEL_NAME]: { name: LABEL_NAME, shape: [n], datatype: 'INT64', values: BigInt64Array.from(predictions, (p) => BigInt(p.label)) },
      };
      reply.header('x-model-version', model.info.version);
      const binaryParts: Buffer[] = [];
      const outputs = inferRequest.outputs.map(({ name: output, binary }) => {
        const { shape, datatype, values } = tensors[output];
        if (!binary) return { name: output, shape, datatype, data: Array.from(values, Number) };
        binaryParts.push(tensorBytes(values));
        return { name: output, shape, datatype, parameters: { binary_data_size: values.byteLength } };
      });
      const header = {
        model_name: name,
        model_version: model.info.version,
        ...(inferRequest.id !== undefined ? { id: inferRequest.id } : {}),
        outputs,
      };
      options.onLatency?.(name, Number(process.hrtime.bigint() - started) / 1e9);
      if (binaryParts.length === 0) return header;
      const { body: bytes, headerLength } = binaryResponse(header, binaryParts);
      return reply.header('Inference-Header-Content-Length', headerLength).type('application/octet-stream').send(bytes);
    });
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', rateLimited, async (request, reply) => infer(request.params, request.body as InferBody | undefined, reply));
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', rateLimited, async (request, reply) =>
    infer(request.params, request.body as InferBody | undefined, reply),
  );
}
