// One pino JSON logger per process; fastify adds reqId to request logs, and
// components take child loggers (`logger.child({ component: 'registry' })`).
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/** `destination`: where lines go (default stdout); tests pass a stream to read them. */
export function createLogger(config: Pick<Config, 'logLevel'>, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return pino({
    level: config.logLevel,
    base: { pid: process.pid, ...bindings },
    // Keys must never reach the logs, whatever a caller puts in a log line.
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'apiKeys'], censor: '[redacted]' },
  }, destination);
}
