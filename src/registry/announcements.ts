// New and promoted versions are announced on Redis pub/sub so every API process
// can drop cached models at once. The registry stays the source of truth: a
// missed announcement only delays a refresh, it never loses a model.
import { Redis } from 'ioredis';
import { z } from 'zod';

export const MODELS_CHANNEL = 'digits:models';

const ANNOUNCEMENT_SCHEMA = z.object({
  type: z.enum(['published', 'promoted', 'deleted']),
  version: z.string(),
  /** The model name of the version (absent from processes older than named models). */
  model: z.string().optional(),
});
export type ModelAnnouncement = z.infer<typeof ANNOUNCEMENT_SCHEMA>;

/** Publishes on `digits:models`; `redis` is any connected client not in subscriber mode. */
export async function announceModel(redis: Redis, announcement: ModelAnnouncement): Promise<void> {
  await redis.publish(MODELS_CHANNEL, JSON.stringify(ANNOUNCEMENT_SCHEMA.parse(announcement)));
}

export interface ModelSubscription {
  close(): Promise<void>;
}

/**
 * Calls `handler` for every announcement. Uses its own connection (a subscribed
 * connection can do nothing else) and resubscribes by itself after reconnects.
 * Messages that are not announcements are ignored: the channel is shared.
 */
export async function subscribeToModels(
  redisUrl: string,
  handler: (announcement: ModelAnnouncement) => void,
): Promise<ModelSubscription> {
  const subscriber = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
  subscriber.on('error', () => {
    // ioredis reconnects by itself; without a listener the error would crash the process.
  });
  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== MODELS_CHANNEL) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const result = ANNOUNCEMENT_SCHEMA.safeParse(parsed);
    if (result.success) handler(result.data);
  });
  try {
    await subscriber.connect();
    await subscriber.subscribe(MODELS_CHANNEL);
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
