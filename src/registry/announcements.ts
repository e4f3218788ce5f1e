// New and promoted versions are announced on Redis pub/sub so every API process
// can drop cached models at once. The registry stays the source of truth: a
// missed announcement only delays a refresh, it never loses a model. The channel
// is under the deployment's prefix (QUEUE_PREFIX), so deployments sharing one
// Redis do not hear each other's models.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../lib/logger.ts';
import { connectRedis, logConnectionLoss, type RedisSettings } from '../lib/redis.ts';

/** `digits:models` for the default prefix. */
export function modelsChannel(prefix: string): string {
  return `${prefix}:models`;
}

const ANNOUNCEMENT_SCHEMA = z.object({
  type: z.enum(['published', 'promoted', 'deleted']),
  version: z.string(),
  /** The model name of the version (absent from processes older than named models). */
  model: z.string().optional(),
});
export type ModelAnnouncement = z.infer<typeof ANNOUNCEMENT_SCHEMA>;

/** Publishes on the prefix's models channel; `redis` is any connected client not in subscriber mode. */
export async function announceModel(redis: Redis, prefix: string, announcement: ModelAnnouncement): Promise<void> {
  await redis.publish(modelsChannel(prefix), JSON.stringify(ANNOUNCEMENT_SCHEMA.parse(announcement)));
}

export interface ModelSubscription {
  close(): Promise<void>;
}

/**
 * Calls `handler` for every announcement. Uses its own connection (a subscribed
 * connection can do nothing else) and resubscribes by itself after reconnects.
 * Messages that are not announcements are ignored: the channel is shared.
 * Rejects when Redis cannot be reached now (the caller retries later).
 */
export async function subscribeToModels(
  redis: RedisSettings,
  handler: (announcement: ModelAnnouncement) => void,
  logger?: Pick<Logger, 'warn' | 'info'>,
): Promise<ModelSubscription> {
  const channel = modelsChannel(redis.prefix);
  const subscriber = connectRedis(redis.redisUrl, 'blocking', { lazy: true });
  if (logger) logConnectionLoss(subscriber, logger, 'model announcements');
  else {
    subscriber.on('error', () => {
      // No logger (library use): ioredis reconnects by itself; without a listener the error would crash the process.
    });
  }
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return; // not JSON: someone else's message on a shared channel
    }
    const result = ANNOUNCEMENT_SCHEMA.safeParse(parsed);
    if (result.success) handler(result.data);
  });
  try {
    await subscriber.connect();
    await subscriber.subscribe(channel);
  } catch (error) {
    subscriber.disconnect();
    throw error;
  }
  return {
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
