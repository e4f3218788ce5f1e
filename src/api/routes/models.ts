// The model registry over HTTP: list, inspect, promote, and the tfjs artifacts
// so that `tf.loadLayersModel('<base>/v1/models/<version>/model.json')` works in a
// browser or in Node. `latest` is accepted wherever a version is.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ModelAnnouncement } from '../../registry/announcements.ts';
import type { ArtifactName, ModelRegistry } from '../../registry/types.ts';
import { LATEST_ALIAS, VERSION_EXAMPLE, isVersion } from '../../registry/version.ts';
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

/** Model reads are open to predict-only keys (PREDICT_API_KEYS); changes need API_KEYS. */
const READ = { access: 'predict' } as const;

/** Versions never change, so their artifacts can be cached forever; `latest` moves. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export async function modelsRoutes(app: FastifyInstance, { registry, announce }: ModelsRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/models', { config: READ }, async () => ({ models: await registry.list() }));

  api.get('/models/:version', { schema: { params: VersionParams }, config: READ }, async (request) => registry.get(request.params.version));

  api.post('/models/:version/promote', { schema: { params: VersionParams }, config: { access: 'manage' } }, async (request) => {
    const promoted = await registry.promote(request.params.version);
    // The pointer file is the truth; a lost announcement only delays other processes' refresh.
    await announce?.({ type: 'promoted', version: promoted.version }).catch((error: unknown) => {
      request.log.warn({ err: error, version: promoted.version }, 'could not announce the promotion');
    });
    return promoted;
  });

  api.get('/models/:version/model.json', { schema: { params: VersionParams }, config: READ }, async (request, reply) => {
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

  api.get('/models/:version/weights.bin', { schema: { params: VersionParams }, config: READ }, async (request, reply) => {
    const { version } = request.params;
    const resolved = version === LATEST_ALIAS ? (await registry.get(version)).version : version;
    const body = await registry.readArtifact(resolved, 'weights.bin' satisfies ArtifactName);
    return sendArtifact(reply, body, 'application/octet-stream', version, resolved);
  });

}

function sendArtifact(reply: FastifyReply, body: Buffer | string, type: string, requested: string, version: string) {
  return reply
    .type(type)
    .header('cache-control', requested === LATEST_ALIAS ? REVALIDATE : IMMUTABLE)
    .header('x-model-version', version)
    .send(body);
}
