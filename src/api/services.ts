// The API's composition root: every service the HTTP app uses, built from the
// config in one place and handed to buildApp. `digits serve` / `digits up`
// (server.ts) and the tests build the API the same way, so what a test runs is
// what production runs, on the test's Redis and prefix.
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { connectRedis, logConnectionLoss, redisSettings, type RedisSettings } from '../lib/redis.ts';
import { JobsService } from '../queue/jobs-service.ts';
import { announceModel, type ModelAnnouncement } from '../registry/announcements.ts';
import { FileSystemRegistry } from '../registry/filesystem.ts';
import { InferencePool } from '../serving/inference-pool.ts';
import { ModelManager } from '../serving/model-manager.ts';
import { ServiceMetrics } from './plugins/metrics.ts';

export interface ApiServices {
  registry: FileSystemRegistry;
  /** Serving: every model name's default version, started and stopped with the app (buildApp's hooks). */
  models: ModelManager;
  metrics: ServiceMetrics;
  /** The training queue; absent without Redis (then the /v1/jobs routes are not mounted). */
  jobs?: JobsService;
  /** Announces promotions to other processes; absent without Redis. */
  announce?: (announcement: ModelAnnouncement) => Promise<void>;
  /** The Redis the services use, if any (tests publish on it like a worker does). */
  redis?: RedisSettings;
  /** Closes the Redis connections; call after the app is closed, so no request is left using them. */
  close(): Promise<void>;
}

export interface ApiServicesOptions {
  logger: Logger;
  /** false: no Redis at all (a registry-only API: no jobs, no announcements); default from the config (REDIS_URL, QUEUE_PREFIX). */
  redis?: false;
  /** Longest wait for Redis per jobs operation before 503 (default 2000). */
  jobsTimeoutMs?: number;
  /** The registry to serve from (tests that hold their own); default one on config.modelDir. */
  registry?: FileSystemRegistry;
}

export async function createApiServices(config: Config, options: ApiServicesOptions): Promise<ApiServices> {
  const { logger } = options;
  const registry = options.registry ?? new FileSystemRegistry(config.modelDir, { defaultModel: config.defaultModel });
  const redis = options.redis === false ? undefined : redisSettings(config);
  // Connections are lazy and fail fast: while Redis is down, job routes answer 503
  // and the API keeps serving models; nothing here waits for Redis.
  const jobs = redis ? JobsService.connect({ ...redis, timeoutMs: options.jobsTimeoutMs, logger }) : undefined;
  const publisher = redis ? logConnectionLoss(connectRedis(redis.redisUrl, 'api'), logger, 'announcements') : undefined;
  const metrics = new ServiceMetrics(jobs);
  // Forward passes on worker threads, so the event loop keeps parsing and decoding while a batch computes.
  const pool = config.inferenceThreads > 0 ? await startInferencePool(config, logger) : undefined;
  // Without them they run here, on the same SIMD kernels (folded-forward.mjs). Either way the API
  // never loads tfjs: models are folded from their files (fold.ts).
  const models = new ModelManager({
    registry,
    batching: { maxBatch: config.maxBatch, maxWaitMs: config.batchWaitMs, ...(pool ? { pool } : {}) },
    pinnedCacheSize: config.modelCacheSize,
    recheckIntervalMs: config.modelRecheckMs,
    defaultModel: config.defaultModel,
    ...(redis ? { redis } : {}),
    logger,
    onBatch: (_version, size) => metrics.batchSize.observe(size),
  });
  return {
    registry,
    models,
    metrics,
    ...(jobs ? { jobs } : {}),
    ...(redis && publisher ? { redis, announce: (announcement: ModelAnnouncement) => announceModel(publisher, redis.prefix, announcement) } : {}),
    async close() {
      for (const step of [async () => jobs?.close(), async () => publisher?.disconnect(), async () => pool?.close()]) {
        await step().catch((error: unknown) => logger.warn({ err: error }, 'error while closing'));
      }
    },
  };
}

async function startInferencePool(config: Config, logger: Logger): Promise<InferencePool | undefined> {
  try {
    return await InferencePool.start(config.inferenceThreads);
  } catch (error) {
    logger.error({ err: error }, 'inference threads could not start; forward passes run on the event loop');
    return undefined;
  }
}
