// The API process: the services from the configuration (services.ts), the app
// on top, listening on HOST:PORT. Used by `digits serve` and `digits up`;
// close() undoes everything in reverse order.
import type { FastifyInstance } from 'fastify';
import v8 from 'node:v8';
import type { Config } from '../lib/config.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { buildApp } from './app.ts';
import { createApiServices } from './services.ts';

export interface RunningApi {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  close(): Promise<void>;
}

export async function startApi(config: Config, logger: Logger = createLogger(config, { process: 'api' })): Promise<RunningApi> {
  // V8 sizes this process's heaps for memory rather than speed: under load the requests in
  // flight survive young-generation collections, and with the default sizing the old
  // generation then grew by ~60 MB of garbage that stayed after the load (no allocation, no
  // collection), with the malloc'd buffers it held. With it the API holds within ~10 % of its
  // idle RSS after a load run, at the same throughput (bench/api-rss.ts, README "API memory").
  // A V8 flag read at every sizing decision, so setting it here works, and the inference
  // threads started after it inherit it; the training worker is another process and keeps
  // V8's defaults.
  v8.setFlagsFromString('--optimize-for-size');
  const services = await createApiServices(config, { logger });
  const app = await buildApp({ config, logger, ...services });

  const close = async () => {
    // The app first, so no request is left using the queue while it closes.
    await app.close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing'));
    await services.close();
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
