// The one Redis connection factory. Which Redis (REDIS_URL, or the documented
// default) and under which key prefix (QUEUE_PREFIX) is decided here, once, from
// the config; everything that talks to Redis (the queue, the workers, model
// announcements) gets a RedisSettings and connects through connectRedis.
//  - 'api': fails fast. No offline queue, one retry, a command timeout: when
//    Redis is down a request gets a 503 within a couple of seconds, not a hang.
//  - 'blocking': what BullMQ needs for workers, QueueEvents and pub/sub
//    subscribers (maxRetriesPerRequest null: commands wait for a reconnect).
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/** What `digits serve` and `digits worker` connect to when REDIS_URL is unset (`digits up` starts its own instead). */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface RedisSettings {
  redisUrl: string;
  /** Key prefix for the queue, our own keys and the announcements channel; tests use one per file. */
  prefix: string;
}

/** The only place REDIS_URL's default is applied. */
export function redisSettings(config: Pick<Config, 'redisUrl' | 'queuePrefix'>): RedisSettings {
  return { redisUrl: config.redisUrl ?? DEFAULT_REDIS_URL, prefix: config.queuePrefix };
}

export type ConnectionRole = 'api' | 'blocking';

export interface ConnectOptions {
  /** Once aborted, the connection (and BullMQ's duplicates of it, which share these options) stops reconnecting, so closing never waits on a Redis that is down. */
  stop?: AbortSignal;
  /** Connect on the first command or connect() (a subscriber that wants to know whether it got through). */
  lazy?: boolean;
}

export function connectRedis(url: string, role: ConnectionRole, options: ConnectOptions = {}): Redis {
  const { stop, lazy = false } = options;
  // Reconnect quickly at first, then every 2 s; never give up unless stopped (Redis may come back).
  const retryStrategy = (times: number) => (stop?.aborted ? null : Math.min(times * 200, 2000));
  if (role === 'api') {
    return new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy,
      lazyConnect: lazy,
    });
  }
  return new Redis(url, { maxRetriesPerRequest: null, connectTimeout: 2000, retryStrategy, lazyConnect: lazy });
}

/**
 * Logs losing and regaining a connection: the first failure of an outage and the
 * recovery, not every reconnect attempt. Also the 'error' listener every ioredis
 * client (and BullMQ object) needs: without one, an error would crash the process.
 */
export function logConnectionLoss<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(
  client: T,
  logger: Pick<Logger, 'warn' | 'info'>,
  connection: string,
): T {
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) logger.warn({ err: error, connection }, 'redis connection lost; reconnecting');
    down = true;
  });
  (client as unknown as { on(event: 'ready', listener: () => void): unknown }).on('ready', () => {
    if (down) logger.info({ connection }, 'redis connection restored');
    down = false;
  });
  return client;
}

/** ioredis / BullMQ errors that mean "Redis is not reachable right now", not "the request is wrong". */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  return (
    name === 'MaxRetriesPerRequestError' ||
    name === 'ClusterAllFailedError' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(code ?? '') ||
    /Connection is closed|Command timed out|enableOfflineQueue|Stream isn't writeable|connect ECONNREFUSED|Reached the max retries/i.test(
      message ?? '',
    )
  );
}
