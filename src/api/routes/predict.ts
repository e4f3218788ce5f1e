// POST /v1/predict: classify one image or a batch, for other services.
// Which model: DEFAULT_MODEL's default version; `?model=NAME` another name's
// default, `&version=V` a given version of it. POST /v1/models/{name}:predict is
// TF Serving's protocol for the same models (routes/tf-serving.ts). (Legacy: `?model=<version id>` or `latest`.)
// Bodies: image/png or image/jpeg (one image); multipart/form-data (one image per
// file part); application/json {"pixels"}, {"image": base64} or {"instances": [...]}.
// Everything becomes 784 MNIST-form pixels (src/serving/instances.ts); the model
// normalises them its own way and micro-batches them with concurrent requests.
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DecodeSlots } from '../../serving/decode-budget.ts';
import {
  InvalidPredictRequestError,
  TooManyInstancesError,
  UnsupportedPredictMediaTypeError,
} from '../../serving/errors.ts';
import { instancesFromJson, instancesPixels, type Instance } from '../../serving/instances.ts';
import type { LoadedModel } from '../../serving/loaded-model.ts';
import type { ModelManager } from '../../serving/model-manager.ts';
import { MODEL_NAME_RULE, isModelName } from '../../registry/model-name.ts';
import { LATEST_ALIAS, VERSION_EXAMPLE, isVersion } from '../../registry/version.ts';
import { clientOf } from '../plugins/api-keys.ts';
import { usePredictJson } from '../plugins/body-parsing.ts';
import type { ZodTypeProvider } from '../plugins/zod-schemas.ts';
import { ServiceError } from '../../lib/errors.ts';

export interface PredictRoutesOptions {
  models: ModelManager;
  /** Most images per request (PREDICT_MAX_INSTANCES). */
  maxInstances: number;
  /** Largest width × height of an uploaded image (PREDICT_MAX_PIXELS). */
  maxPixels: number;
  /** Most width × height decoded for one request, all images together (PREDICT_MAX_REQUEST_PIXELS). */
  maxRequestPixels: number;
  /** Most images decoded at once, all requests and routes together (PREDICT_DECODE_CONCURRENCY). */
  slots: DecodeSlots;
  /** Largest body, and largest multipart upload in total (BODY_LIMIT). */
  bodyLimit: number;
  /** Requests per minute per client (API key, else IP); 0 turns rate limiting off (PREDICT_RATE_LIMIT). */
  rateLimitPerMinute: number;
  /** Sees how many images each model version classified (metrics). */
  onPredictions?: (version: string, count: number) => void;
  /** Seconds each request took from parsed body to answer, with the model that answered (metrics). */
  onLatency?: (model: LoadedModel, seconds: number) => void;
}

const PredictQuery = z.strictObject({
  model: z
    .string()
    .refine((value) => isModelName(value) || isVersion(value) || value === LATEST_ALIAS, {
      message: `expected ${MODEL_NAME_RULE} (or, legacy, a version id like ${VERSION_EXAMPLE} or "${LATEST_ALIAS}")`,
    })
    .optional(),
  version: z.string().refine(isVersion, { message: `expected a version id like ${VERSION_EXAMPLE}` }).optional(),
  preprocess: z.enum(['mnist']).optional(),
});

/** The lease for `?model=` / `?version=`; a legacy version id in `model` means that version. */
function leaseFor(models: ModelManager, model: string | undefined, version: string | undefined) {
  if (model !== undefined && !isModelName(model)) {
    if (version !== undefined) throw new InvalidPredictRequestError('version= needs model= to be a model name, not a version id');
    return models.acquire(model);
  }
  return models.resolve(model, version);
}

const IMAGE_TYPES = ['image/png', 'image/jpeg'];

export class RateLimitExceededError extends ServiceError {
  readonly statusCode = 429;
  constructor(max: number, after: string) {
    super(`rate limit of ${max} predict requests per minute exceeded (PREDICT_RATE_LIMIT); retry in ${after}`);
  }
}

/** A multipart upload too big in total: files are buffered, so the whole request stays under BODY_LIMIT. */
class UploadTooLargeError extends ServiceError {
  readonly statusCode = 413;
  constructor(limit: number) {
    super(`the uploaded files are larger than the limit of ${limit} bytes in total (BODY_LIMIT)`);
  }
}

async function multipartInstances(request: FastifyRequest, maxInstances: number, bodyLimit: number): Promise<Instance[]> {
  const instances: Instance[] = [];
  let total = 0;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        throw new InvalidPredictRequestError(
          `multipart field ${JSON.stringify(part.fieldname)} is not a file; send each image as a file part (options go in the query string)`,
        );
      }
      const bytes = await part.toBuffer();
      total += bytes.length;
      if (total > bodyLimit) throw new UploadTooLargeError(bodyLimit);
      instances.push({ what: `file ${JSON.stringify(part.filename || part.fieldname)}`, bytes });
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'FST_FILES_LIMIT') throw new TooManyInstancesError(`more than ${maxInstances}`, maxInstances);
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new UploadTooLargeError(bodyLimit);
    if (code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw new InvalidPredictRequestError(`the multipart body has too many parts: at most ${maxInstances} image files (PREDICT_MAX_INSTANCES) and 8 fields`);
    }
    if (error instanceof Error && !(error instanceof ServiceError) && !('statusCode' in error)) {
      // busboy's parse errors ("Boundary not found", "Unexpected end of form", "Malformed part header") are the client's.
      throw new InvalidPredictRequestError(`malformed multipart/form-data body: ${error.message}`);
    }
    throw error;
  }
  if (instances.length === 0) throw new InvalidPredictRequestError('the multipart body has no image files');
  return instances;
}

export async function predictRoutes(app: FastifyInstance, options: PredictRoutesOptions): Promise<void> {
  const { models, maxInstances, maxPixels, bodyLimit } = options;
  const { slots } = options;

  // Body parsers for this plugin only: images as bytes, JSON with a nesting limit,
  // multipart with per-request limits, and a clear 415 for anything else.
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
  usePredictJson(app, bodyLimit);
  app.addContentTypeParser('*', (request, _payload, done) =>
    done(new UnsupportedPredictMediaTypeError(request.headers['content-type']), undefined),
  );
  await app.register(multipart, {
    limits: { fileSize: bodyLimit, files: maxInstances, fields: 8, parts: maxInstances + 8, headerPairs: 100 },
  });
  if (options.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: false,
      keyGenerator: (request) => clientOf(request).id,
      errorResponseBuilder: (_request, context) => new RateLimitExceededError(context.max, context.after),
    });
  }

  app.withTypeProvider<ZodTypeProvider>().post(
    '/predict',
    {
      schema: { querystring: PredictQuery },
      config: {
        access: 'predict',
        ...(options.rateLimitPerMinute > 0 ? { rateLimit: { max: options.rateLimitPerMinute, timeWindow: 60_000 } } : {}),
      },
    },
    async (request, reply) => {
      const started = process.hrtime.bigint();
      const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
      let instances: Instance[];
      if (type !== undefined && IMAGE_TYPES.includes(type)) instances = [{ what: 'body', bytes: request.body as Buffer }];
      else if (request.isMultipart()) instances = await multipartInstances(request, maxInstances, bodyLimit);
      else if (type === 'application/json') instances = instancesFromJson(request.body, maxInstances);
      else throw new UnsupportedPredictMediaTypeError(request.headers['content-type']);

      // The model first: with none published, say so before decoding anything.
      const lease = await leaseFor(models, request.query.model, request.query.version);
      try {
        const preprocess = request.query.preprocess === 'mnist';
        const pixels = await instancesPixels(instances, { preprocess, maxPixels, maxRequestPixels: options.maxRequestPixels, slots });
        const { model } = lease;
        const predictions = await model.predict(pixels);
        options.onPredictions?.(model.info.version, predictions.length);
        options.onLatency?.(model, Number(process.hrtime.bigint() - started) / 1e9);
        reply.header('x-model-version', model.info.version);
        return { predictions, model: model.info };
      } finally {
        lease.release();
      }
    },
  );
}
