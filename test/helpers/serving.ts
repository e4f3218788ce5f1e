// Shared pieces of the serving tests: seed-net models published into a temp
// registry, the real app listening on a free port, and images as real PNG bytes.
import * as tf from '@tensorflow/tfjs';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import { createApiServices } from '../../src/api/services.ts';
import { loadConfig } from '../../src/lib/config.ts';
import { createLogger } from '../../src/lib/logger.ts';
import type { JobsService } from '../../src/queue/jobs-service.ts';
import type { FileSystemRegistry } from '../../src/registry/filesystem.ts';
import type { ModelVersion } from '../../src/registry/types.ts';
import { buildSeedNet, summarize } from '../../src/model/seed-net.ts';
import type { ArchitectureName } from '../../src/model/spec.ts';
import { initEngine } from '../../src/engine/index.ts';
import { trainingMetadata, writeTrainingOutput } from './model-fixture.ts';

/** An untrained seed net (its seed makes its predictions its own) as a training output directory. */
export async function seedNetOutput(seed: number, overrides: Record<string, unknown> = {}, architecture: ArchitectureName = 'seed'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'serving-model-'));
  await initEngine(); // the backend the API will use too (idempotent)
  const model = buildSeedNet(seed, architecture);
  try {
    return await writeTrainingOutput(
      dir,
      model,
      trainingMetadata({ trainableParams: summarize(model).trainableParams, architecture, normalization: { mean: 0.1307, std: 0.3081 }, ...overrides }),
    );
  } finally {
    model.dispose();
  }
}

export async function publishSeedNet(
  registry: FileSystemRegistry,
  seed: number,
  overrides: Record<string, unknown> = {},
  architecture: ArchitectureName = 'seed',
): Promise<ModelVersion> {
  return registry.publish(await seedNetOutput(seed, overrides, architecture));
}

export interface ServingApi {
  app: FastifyInstance;
  url: string;
  registry: FileSystemRegistry;
  jobs: JobsService;
  /** The queue's Redis key prefix (unique per API). */
  prefix: string;
  /** Publishes like a worker does: into the registry, then the announcement on Redis. */
  publishAndAnnounce(seed: number, architecture?: ArchitectureName): Promise<ModelVersion>;
  close(): Promise<void>;
}

/** The real app, built as `digits serve` builds it (createApiServices + buildApp), on a free port, with the test Redis for jobs and model announcements. */
export async function startServingApi(options: {
  redisUrl: string;
  env?: Record<string, string>;
  modelDir?: string;
  /** Sees every route the app registers (AppDeps.onRoute). */
  onRoute?: (route: RouteOptions) => void;
}): Promise<ServingApi> {
  const root = await mkdtemp(join(tmpdir(), 'serving-api-'));
  const prefix = `test-serving-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const config = loadConfig({
    MODEL_DIR: options.modelDir ?? join(root, 'models'),
    DATA_DIR: join(root, 'data'),
    REDIS_URL: options.redisUrl,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    ...options.env,
  });
  const services = await createApiServices(config, { logger: createLogger(config) });
  const { registry } = services;
  const jobs = services.jobs!;
  const announce = services.announce!;
  const app = await buildApp({ config, ...services, ...(options.onRoute ? { onRoute: options.onRoute } : {}) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    registry,
    jobs,
    prefix,
    async publishAndAnnounce(seed, architecture = 'seed') {
      const version = await publishSeedNet(registry, seed, {}, architecture);
      await announce({ type: 'published', version: version.version });
      return version;
    },
    async close() {
      await app.close();
      await services.close();
    },
  };
}

/** 784 gray values (0–255) as an 8-bit grayscale PNG (what MNIST tools write). */
export async function pngOf(pixels: ArrayLike<number>, side = 28): Promise<Buffer> {
  return sharp(Buffer.from(Uint8Array.from(pixels)), { raw: { width: side, height: side, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** A deterministic test image: a bright stroke whose position depends on `n`. */
export function strokePixels(n: number): Uint8Array {
  const pixels = new Uint8Array(784);
  for (let y = 4; y < 24; y++) for (let x = 0; x < 3; x++) pixels[y * 28 + 6 + ((n * 3) % 16) + x] = 255;
  return pixels;
}

/** Probabilities for `pixels` computed directly with tfjs (no HTTP), to check the service's answers. */
export function directProbabilities(model: tf.LayersModel, pixels: Uint8Array, mean = 0.1307, std = 0.3081): number[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels, (v) => (v / 255 - mean) / std), [1, 28, 28, 1]);
    return Array.from((model.predict(x) as tf.Tensor).dataSync());
  });
}

export async function postPredict(url: string, body: string | Uint8Array | FormData, contentType?: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' || body instanceof FormData ? body : new Uint8Array(body),
    headers: { ...(contentType ? { 'content-type': contentType } : {}), ...headers },
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, body: json, text };
}
