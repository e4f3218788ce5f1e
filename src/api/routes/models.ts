// The model registry over HTTP: list, inspect, promote, and the tfjs artifacts
// so that `tf.loadLayersModel('<base>/v1/models/<version>/model.json')` works in a
// browser or in Node. `latest` is accepted wherever a version is.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ModelAnnouncement } from '../../registry/announcements.ts';
import type { ArtifactName, ModelRegistry } from '../../registry/types.ts';
import { LATEST_ALIAS, VERSION_EXAMPLE, isVersion } from '../../registry/version.ts';
import { loadLayersModel, normalizationOf, type ServingMetadata } from '../../serving/loaded-model.ts';
import { seedNetToOnnx } from '../../serving/onnx-export.ts';
import { ModelLoadError } from '../../serving/errors.ts';
import { signatureOf } from '../../serving/signature.ts';
import type { ZodTypeProvider } from '../plugins/zod-schemas.ts';

export interface ModelsRoutesOptions {
  registry: ModelRegistry;
  /** Tells other processes about a promotion (Redis pub/sub); optional so the API runs without Redis. */
  announce?: (announcement: ModelAnnouncement) => Promise<void>;
}

const VersionParams = z.object({
  version: z.string().refine((value) => value === LATEST_ALIAS || isVersion(value), {
    message: `expected a version id like ${VERSION_EXAMPLE} or "${LATEST_ALIAS}"`,
  }),
});

/** Versions never change, so their artifacts can be cached forever; `latest` moves. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export async function modelsRoutes(app: FastifyInstance, { registry, announce }: ModelsRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/models', async () => ({ models: await registry.list() }));

  // The version's metadata and its signature (input shape, dtype, value range, polarity, normalisation, class labels).
  api.get('/models/:version', { schema: { params: VersionParams } }, async (request) => {
    const model = await registry.get(request.params.version);
    return { ...model, signature: signatureOf({ dataset: model.dataset, normalization: normalizationOf(model as ServingMetadata) }) };
  });

  api.post('/models/:version/promote', { schema: { params: VersionParams } }, async (request) => {
    const promoted = await registry.promote(request.params.version);
    // The pointer file is the truth; a lost announcement only delays other processes' refresh.
    await announce?.({ type: 'promoted', version: promoted.version }).catch((error: unknown) => {
      request.log.warn({ err: error, version: promoted.version }, 'could not announce the promotion');
    });
    return promoted;
  });

  api.get('/models/:version/model.json', { schema: { params: VersionParams } }, async (request, reply) => {
    const { version } = request.params;
    const model = await registry.get(version);
    let body: Buffer | string = await registry.readArtifact(model.version, 'model.json');
    if (version === LATEST_ALIAS) {
      // Pin the weights to the version this model.json belongs to: tfjs resolves weight
      // paths against the model.json URL, and `latest` may move between the two requests.
      const json = JSON.parse(body.toString('utf8')) as { weightsManifest: { paths: string[] }[] };
      for (const group of json.weightsManifest) group.paths = group.paths.map(() => `../${model.version}/weights.bin`);
      body = JSON.stringify(json);
    }
    return sendArtifact(reply, body, 'application/json; charset=utf-8', version, model.version);
  });

  api.get('/models/:version/weights.bin', { schema: { params: VersionParams } }, async (request, reply) => {
    const { version } = request.params;
    const resolved = version === LATEST_ALIAS ? (await registry.get(version)).version : version;
    const body = await registry.readArtifact(resolved, 'weights.bin' satisfies ArtifactName);
    return sendArtifact(reply, body, 'application/octet-stream', version, resolved);
  });

  // The version as ONNX (opset 13, BatchNorm folded; src/serving/onnx-export.ts), built from its tfjs artifacts on request.
  api.get('/models/:version/model.onnx', { schema: { params: VersionParams } }, async (request, reply) => {
    const { version } = request.params;
    const metadata = await registry.get(version);
    const model = await loadLayersModel(registry, metadata.version).catch((error: unknown) => {
      throw new ModelLoadError(metadata.version, error);
    });
    let bytes: Uint8Array;
    try {
      bytes = seedNetToOnnx(model, metadata as ServingMetadata);
    } finally {
      model.dispose();
    }
    reply.header('content-disposition', `attachment; filename="${metadata.dataset}-${metadata.version}.onnx"`);
    return sendArtifact(reply, Buffer.from(bytes), ONNX_TYPE, version, metadata.version);
  });

}

/** ONNX files have no registered media type; runtimes read the bytes whatever the label. */
const ONNX_TYPE = 'application/octet-stream';

function sendArtifact(reply: FastifyReply, body: Buffer | string, type: string, requested: string, version: string) {
  return reply
    .type(type)
    .header('cache-control', requested === LATEST_ALIAS ? REVALIDATE : IMMUTABLE)
    .header('x-model-version', version)
    .send(body);
}
