// The API process: the services from the configuration (services.ts), the app
// on top, listening on HOST:PORT. Used by `digits serve` and `digits up`;
// close() undoes everything in reverse order.
import type { FastifyInstance } from 'fastify';
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
