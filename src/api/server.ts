// The API process's wiring: registry, job queue and announcements from the
// configuration, the app on top, listening on HOST:PORT. Used by `digits serve`
// and `digits up`; close() undoes everything in reverse order.
import type { FastifyInstance } from 'fastify';
import { DEFAULT_REDIS_URL, type Config } from '../lib/config.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { connectRedis } from '../queue/connection.ts';
import { JobsService } from '../queue/jobs-service.ts';
import { loadQueueEnv } from '../queue/settings.ts';
import { announceModel } from '../registry/announcements.ts';
import { FileSystemRegistry } from '../registry/filesystem.ts';
import { buildApp } from './app.ts';

export interface RunningApi {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  close(): Promise<void>;
}

export async function startApi(config: Config, logger: Logger = createLogger(config, { process: 'api' })): Promise<RunningApi> {
  const redisUrl = config.redisUrl ?? DEFAULT_REDIS_URL;
  const registry = new FileSystemRegistry(config.modelDir, { defaultModel: config.defaultModel });
  // Connections are lazy and fail fast: while Redis is down, job routes answer 503
  // and the API keeps serving models; nothing here waits for Redis.
  const queueEnv = loadQueueEnv();
  const jobs = JobsService.connect({ redisUrl, prefix: queueEnv.prefix });
  const redis = connectRedis(redisUrl, 'api').on('error', () => {});
  const app = await buildApp({
    config,
    registry,
    jobs,
    logger,
    announce: (announcement) => announceModel(redis, announcement),
  });

  const close = async () => {
    // The app first, so no request is left using the queue while it closes.
    for (const step of [() => app.close(), () => jobs.close(), async () => redis.disconnect()]) {
      await step().catch((error: unknown) => logger.warn({ err: error }, 'error while closing'));
    }
  };
  try {
    const url = await app.listen({ port: config.port, host: config.host });
    return { app, url, close };
  } catch (error) {
    await close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new PortInUseError(config.host, config.port);
    }
    throw error;
  }
}

export class PortInUseError extends Error {
  constructor(host: string, port: number) {
    super(`PORT ${port} on ${host} is already in use: stop what listens there or set PORT to another port`);
    this.name = 'PortInUseError';
  }
}
