// The one place that knows how the training queue is wired to Redis: the queue
// name, key prefix, our own keys next to BullMQ's, and two kinds of connection.
//  - 'api': fails fast. No offline queue, one retry, a command timeout: when
//    Redis is down a request gets a 503 within a couple of seconds, not a hang.
//  - 'blocking': what BullMQ needs for workers, QueueEvents and pub/sub
//    subscribers (maxRetriesPerRequest null: commands wait for a reconnect).
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobData, JobResult } from './schema.ts';

export const QUEUE_NAME = 'digits-training';
/** BullMQ job name of every training job. */
export const JOB_NAME = 'train';

export interface QueueSettings {
  redisUrl: string;
  /** Key prefix for the queue and our own keys; tests use one per file. */
  prefix: string;
}

export type ConnectionRole = 'api' | 'blocking';

/**
 * `stop`: once aborted, the connection (and BullMQ's duplicates of it, which
 * share these options) stops reconnecting, so closing never waits on a Redis
 * that is down.
 */
export function connectRedis(url: string, role: ConnectionRole, stop?: AbortSignal): Redis {
  // Reconnect quickly at first, then every 2 s; never give up unless stopped (Redis may come back).
  const retryStrategy = (times: number) => (stop?.aborted ? null : Math.min(times * 200, 2000));
  if (role === 'api') {
    return new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy,
    });
  }
  return new Redis(url, { maxRetriesPerRequest: null, connectTimeout: 2000, retryStrategy });
}

export type TrainingQueue = Queue<JobData, JobResult, typeof JOB_NAME>;

export function createTrainingQueue(settings: QueueSettings, connection: Redis): TrainingQueue {
  return new Queue<JobData, JobResult, typeof JOB_NAME>(QUEUE_NAME, { connection, prefix: settings.prefix });
}

export function createQueueEvents(settings: QueueSettings, connection: Redis): QueueEvents {
  return new QueueEvents(QUEUE_NAME, { connection, prefix: settings.prefix });
}

/** Our own Redis keys, beside BullMQ's under the same prefix. */
export function serviceKeys(prefix: string) {
  const base = `${prefix}:${QUEUE_NAME}:svc`;
  return {
    /** Sorted set of job ids by creation time: the order GET /v1/jobs lists them in. */
    index: `${base}:index`,
    /** Hash job id → JSON CancelRecord; a job here that is failed or gone is cancelled. */
    cancelled: `${base}:cancelled`,
    /** Pub/sub channel: a message (a job id) asks the worker running that job to stop. */
    cancelChannel: `${base}:cancel`,
    /** Hash job id → JSON PublishRecord: the job claimed (or finished) publishing its model (publish-guard.ts). */
    published: `${base}:published`,
    /** String per Idempotency-Key (hashed) → JSON { jobId, fingerprint }. */
    idempotency: (keyHash: string) => `${base}:idem:${keyHash}`,
    /** String per worker host (expires unless refreshed) → JSON WorkerHeartbeat (heartbeat.ts). */
    workerHeartbeat: (host: string) => `${base}:worker:${host}`,
  };
}
