// How the training queue sits in Redis: the queue name, our own keys next to
// BullMQ's under the same prefix. Connections come from lib/redis.ts.
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisSettings } from '../lib/redis.ts';
import type { JobData, JobResult } from './schema.ts';

export const QUEUE_NAME = 'digits-training';
/** BullMQ job name of every training job. */
export const JOB_NAME = 'train';

export type TrainingQueue = Queue<JobData, JobResult, typeof JOB_NAME>;

export function createTrainingQueue(settings: RedisSettings, connection: Redis): TrainingQueue {
  return new Queue<JobData, JobResult, typeof JOB_NAME>(QUEUE_NAME, { connection, prefix: settings.prefix });
}

export function createQueueEvents(settings: RedisSettings, connection: Redis): QueueEvents {
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
