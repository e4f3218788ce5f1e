// The model registry over HTTP, in TF Serving's shape: every version belongs to a
// model name, and each name has a default version.
//   GET    /v1/models                                  all versions (newest first) and all names
//   GET    /v1/models/{name}                           a name: its default and its versions
//   GET    /v1/models/{name}/versions/{v}              one version
//   POST   /v1/models/{name}/versions/{v}/promote      make it the name's default (after verifying it)
//   DELETE /v1/models/{name}/versions/{v}              remove it (not the default)
//   GET    /v1/models/{name}/versions/{v}/model.json|weights.bin
// Legacy routes keep working (not redirected: tfjs and old clients call them
// directly): `/v1/models/{version}` and its promote/model.json/weights.bin, where
// `latest` means DEFAULT_MODEL's default version. `{name}/model.json` serves the
// name's default. Artifacts load with `tf.loadLayersModel('<url>/model.json')`.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { MODEL_JSON, parseModelJson } from '../../model/artifacts.ts';
import type { ModelAnnouncement } from '../../registry/announcements.ts';
import { MODEL_NAME_RULE, isModelName } from '../../registry/model-name.ts';
import type { ArtifactName, ModelRegistry, ModelVersion } from '../../registry/types.ts';
import { LATEST_ALIAS, VERSION_EXAMPLE, isVersion } from '../../registry/version.ts';
import { NoDefaultVersionError, UnknownModelError } from '../../registry/errors.ts';
import { NotSeedNetError } from '../../model/spec.ts';
import { loadFoldedModel, normalizationOf, type ServingMetadata } from '../../serving/loaded-model.ts';
import { ModelNotExportableError, seedNetToOnnx } from '../../serving/onnx-export.ts';
import { ModelLoadError } from '../../serving/errors.ts';
import { signatureOf } from '../../serving/signature.ts';
import type { ZodTypeProvider } from '../plugins/zod-schemas.ts';

export interface ModelsRoutesOptions {
  registry: ModelRegistry;
  /** Tells other processes about a promotion or deletion (Redis pub/sub); optional so the API runs without Redis. */
  announce?: (announcement: ModelAnnouncement) => Promise<void>;
  /** Loads and runs a version (a forward pass) before it may become a default; throws to refuse. */
  verify?: (version: ModelVersion) => Promise<void>;
  /** Called after this process changed a default or deleted a version (so its own serving follows at once). */
  onChange?: (change: ModelAnnouncement) => void;
}

const RefParams = z.object({
  ref: z.string().refine((value) => value === LATEST_ALIAS || isVersion(value) || isModelName(value), {
    message: `expected a model name (e.g. mnist), a version id like ${VERSION_EXAMPLE}, or "${LATEST_ALIAS}"`,
  }),
});
const LegacyVersionParams = z.object({
  ref: z.string().refine((value) => value === LATEST_ALIAS || isVersion(value), {
    message: `expected a version id like ${VERSION_EXAMPLE} or "${LATEST_ALIAS}"`,
  }),
});
const NameVersionParams = z.object({
  name: z.string().refine(isModelName, { message: `expected ${MODEL_NAME_RULE}` }),
  version: z.string().refine(isVersion, { message: `expected a version id like ${VERSION_EXAMPLE}` }),
});
const ListQuery = z.strictObject({
  model: z.string().refine(isModelName, { message: `expected ${MODEL_NAME_RULE}` }).optional(),
});

/** Model reads are open to predict-only keys (PREDICT_API_KEYS); changes need API_KEYS. */
const READ = { access: 'predict' } as const;
const MANAGE = { access: 'manage' } as const;

/** Versions never change, so their artifacts can be cached forever; `latest` and names move. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export async function modelsRoutes(app: FastifyInstance, options: ModelsRoutesOptions): Promise<void> {
  const { registry } = options;
  const api = app.withTypeProvider<ZodTypeProvider>();

  const changed = async (request: { log: FastifyInstance['log'] }, change: ModelAnnouncement) => {
    options.onChange?.(change);
    // The registry is the truth; a lost announcement only delays other processes' refresh.
    await options.announce?.(change).catch((error: unknown) => {
      request.log.warn({ err: error, ...change }, 'could not announce the model change');
    });
  };
  const promote = async (request: { log: FastifyInstance['log'] }, version: string) => {
    const promoted = await registry.promote(version, options.verify ? { verify: options.verify } : {});
    await changed(request, { type: 'promoted', version: promoted.version, model: promoted.model });
    return promoted;
  };

  api.get('/models', { schema: { querystring: ListQuery }, config: READ }, async (request) => ({
    models: await registry.list(request.query.model),
    names: await registry.models(),
  }));

  api.get('/models/:ref', { schema: { params: RefParams }, config: READ }, async (request) => {
    const { ref } = request.params;
    if (!isModelName(ref)) return withSignature(await registry.get(ref));
    const versions = await registry.list(ref);
    if (versions.length === 0) throw new UnknownModelError(ref);
    return { name: ref, defaultVersion: versions.find((v) => v.latest)?.version ?? null, versions };
  });

  api.post('/models/:ref/promote', { schema: { params: LegacyVersionParams }, config: MANAGE }, async (request) => promote(request, request.params.ref));

  api.get('/models/:name/versions/:version', { schema: { params: NameVersionParams }, config: READ }, async (request) =>
    withSignature(await registry.getVersion(request.params.name, request.params.version)),
  );

  api.post('/models/:name/versions/:version/promote', { schema: { params: NameVersionParams }, config: MANAGE }, async (request) => {
    const found = await registry.getVersion(request.params.name, request.params.version);
    return promote(request, found.version);
  });

  api.delete('/models/:name/versions/:version', { schema: { params: NameVersionParams }, config: MANAGE }, async (request, reply) => {
    const found = await registry.getVersion(request.params.name, request.params.version);
    await registry.delete(found.version);
    await changed(request, { type: 'deleted', version: found.version, model: found.model });
    return reply.code(204).send();
  });

  const modelJson = async (reply: FastifyReply, model: ModelVersion, moving: boolean, weightsPath: string) => {
    let body: Buffer | string = await registry.readArtifact(model.version, 'model.json');
    if (moving) {
      // Pin the weights to the version this model.json belongs to: tfjs resolves weight
      // paths against the model.json URL, and the default may move between the two requests.
      const json = parseModelJson(`${model.version}/${MODEL_JSON}`, body);
      for (const group of json.weightsManifest) group.paths = group.paths.map(() => weightsPath);
      body = JSON.stringify(json);
    }
    return sendArtifact(reply, body, 'application/json; charset=utf-8', moving, model.version);
  };
  const weights = async (reply: FastifyReply, model: ModelVersion, moving: boolean) =>
    sendArtifact(reply, await registry.readArtifact(model.version, 'weights.bin' satisfies ArtifactName), 'application/octet-stream', moving, model.version);

  api.get('/models/:ref/model.json', { schema: { params: RefParams }, config: READ }, async (request, reply) => {
    const { ref } = request.params;
    const model = await defaultOrVersion(registry, ref);
    const moving = ref === LATEST_ALIAS || isModelName(ref);
    return modelJson(reply, model, moving, isModelName(ref) ? `versions/${model.version}/weights.bin` : `../${model.version}/weights.bin`);
  });

  api.get('/models/:ref/weights.bin', { schema: { params: RefParams }, config: READ }, async (request, reply) => {
    const { ref } = request.params;
    const model = await defaultOrVersion(registry, ref);
    return weights(reply, model, ref === LATEST_ALIAS || isModelName(ref));
  });

  api.get('/models/:name/versions/:version/model.json', { schema: { params: NameVersionParams }, config: READ }, async (request, reply) => {
    const model = await registry.getVersion(request.params.name, request.params.version);
    return modelJson(reply, model, false, 'weights.bin');
  });

  api.get('/models/:name/versions/:version/weights.bin', { schema: { params: NameVersionParams }, config: READ }, async (request, reply) => {
    const model = await registry.getVersion(request.params.name, request.params.version);
    return weights(reply, model, false);
  });

  // The version as ONNX (opset 13, BatchNorm folded; src/serving/onnx-export.ts), built from its tfjs artifacts on request.
  const onnx = async (reply: FastifyReply, metadata: ModelVersion, moving: boolean) => {
    const model = await loadFoldedModel(registry, metadata.version).catch((error: unknown) => {
      throw error instanceof NotSeedNetError ? new ModelNotExportableError(metadata.version, error) : new ModelLoadError(metadata.version, error);
    });
    const bytes = seedNetToOnnx(model, metadata as ServingMetadata);
    reply.header('content-disposition', `attachment; filename="${metadata.model}-${metadata.version}.onnx"`);
    return sendArtifact(reply, Buffer.from(bytes), ONNX_TYPE, moving, metadata.version);
  };
  api.get('/models/:ref/model.onnx', { schema: { params: RefParams }, config: READ }, async (request, reply) => {
    const { ref } = request.params;
    return onnx(reply, await defaultOrVersion(registry, ref), ref === LATEST_ALIAS || isModelName(ref));
  });
  api.get('/models/:name/versions/:version/model.onnx', { schema: { params: NameVersionParams }, config: READ }, async (request, reply) =>
    onnx(reply, await registry.getVersion(request.params.name, request.params.version), false),
  );

}

/** `ref` as a name (its default version), a version id, or `latest`. */
async function defaultOrVersion(registry: ModelRegistry, ref: string): Promise<ModelVersion> {
  if (!isModelName(ref)) return registry.get(ref);
  const found = await registry.defaultVersion(ref);
  if (found) return found;
  if ((await registry.list(ref)).length === 0) throw new UnknownModelError(ref);
  throw new NoDefaultVersionError(ref);
}

/** A version's metadata with its signature (input shape, dtype, value range, polarity, normalisation, class labels). */
function withSignature(model: ModelVersion) {
  return { ...model, signature: signatureOf({ dataset: model.dataset, normalization: normalizationOf(model as ServingMetadata) }) };
}

/** ONNX files have no registered media type; runtimes read the bytes whatever the label. */
const ONNX_TYPE = 'application/octet-stream';

function sendArtifact(reply: FastifyReply, body: Buffer | string, type: string, moving: boolean, version: string) {
  return reply
    .type(type)
    .header('cache-control', moving ? REVALIDATE : IMMUTABLE)
    .header('x-model-version', version)
    .send(body);
}
