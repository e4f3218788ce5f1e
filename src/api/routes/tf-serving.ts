// TF Serving's REST predict API (https://www.tensorflow.org/tfx/serving/api_rest):
//   POST /v1/models/{name}:predict
//   POST /v1/models/{name}/versions/{version}:predict
// Body: the row format {"instances": [...]} (each a row of 784 numbers, 28 rows of 28,
// 28×28×1, or {"image": …}) or the columnar format {"inputs": [...] | {"image": [...]}},
// optionally with "signature_name": "serving_default". Pixel values 0–255 (a "scale" field
// declares 0–1), parsed by src/serving/instances.ts like /v1/predict's JSON bodies.
// Answer: row format → {"predictions": [{"probabilities": [10], "label": n}, …]};
// columnar → {"outputs": {"probabilities": [[10], …], "label": [n, …]}} (TF Serving's
// forms for a model with two named outputs). Errors: {"error": "<message>"}.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { InvalidPredictRequestError } from '../../serving/errors.ts';
import type { DecodeSlots } from '../../serving/decode-budget.ts';
import { instancesFromJson, instancesPixels } from '../../serving/instances.ts';
import type { ModelResolver } from '../../serving/model-resolver.ts';
import { LABEL_NAME, PROBABILITIES_NAME } from '../../serving/signature.ts';
import { useProtocolJson } from '../plugins/protocol-json.ts';

export interface TfServingOptions {
  resolver: ModelResolver;
  maxInstances: number;
  maxPixels: number;
  /** Most pixels decoded for one request, all images together (PREDICT_MAX_REQUEST_PIXELS). */
  maxRequestPixels: number;
  slots: DecodeSlots;
  bodyLimit: number;
  rateLimitPerMinute: number;
  onPredictions?: (model: { name: string; version: string }, count: number) => void;
  onLatency?: (name: string, seconds: number) => void;
}

/** The only signature this model has, under the name TF Serving gives a default one. */
const SIGNATURE_NAME = 'serving_default';

interface PredictParams {
  name: string;
  version?: string;
}

export async function tfServingRoutes(app: FastifyInstance, options: TfServingOptions): Promise<void> {
  const { resolver, maxInstances, maxPixels } = options;
  const rateLimited = await useProtocolJson(app, options);

  const predict = async (params: PredictParams, body: unknown, reply: FastifyReply) => {
    const started = process.hrtime.bigint();
    let request = body;
    if (typeof body === 'object' && body !== null && 'signature_name' in body) {
      const { signature_name: signature, ...rest } = body as Record<string, unknown>;
      if (signature !== SIGNATURE_NAME) throw new InvalidPredictRequestError(`unknown signature_name ${JSON.stringify(signature)}; this model has "${SIGNATURE_NAME}"`);
      request = rest;
    }
    const columnar = typeof request === 'object' && request !== null && 'inputs' in request;
    const instances = instancesFromJson(request, maxInstances);
    const resolved = await resolver.resolveModel(params.name, params.version);
    try {
      const { model, name } = resolved;
      const pixels = await instancesPixels(instances, { preprocess: false, maxPixels, maxRequestPixels: options.maxRequestPixels, slots: options.slots });
      const predictions = await model.predict(pixels);
      options.onPredictions?.({ name, version: model.info.version }, predictions.length);
      reply.header('x-model-version', model.info.version);
      options.onLatency?.(name, Number(process.hrtime.bigint() - started) / 1e9);
      return columnar
        ? { outputs: { [PROBABILITIES_NAME]: predictions.map((p) => p.probabilities), [LABEL_NAME]: predictions.map((p) => p.label) } }
        : { predictions: predictions.map((p) => ({ [PROBABILITIES_NAME]: p.probabilities, [LABEL_NAME]: p.label })) };
    } finally {
      resolved.release();
    }
  };

  // `::` is a literal colon in find-my-way; the regex keeps the name from swallowing ":predict".
  app.post<{ Params: PredictParams }>('/v1/models/:name(^[^:/]+)::predict', rateLimited, async (request, reply) =>
    predict(request.params, request.body, reply),
  );
  app.post<{ Params: PredictParams }>('/v1/models/:name/versions/:version(^[^:/]+)::predict', rateLimited, async (request, reply) =>
    predict(request.params, request.body, reply),
  );
}
