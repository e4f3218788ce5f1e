// A training worker: a BullMQ Worker (concurrency 1) running the training
// processor, plus a pub/sub subscriber that turns cancel requests into aborts.
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../lib/logger.ts';
import { connectRedis, logConnectionLoss, type RedisSettings } from '../lib/redis.ts';
import { QUEUE_NAME, serviceKeys } from './connection.ts';
import { CANCELLED_REASON } from './job-view.ts';
import { startHeartbeat } from './heartbeat.ts';
import { PublishGuard } from './publish-guard.ts';
import { createTrainingProcessor, SHUTDOWN_REASON, type ProcessorDeps } from './processor.ts';
import type { JobData, JobResult } from './schema.ts';

/** WORKER_LOCK_DURATION_MS and WORKER_STALLED_INTERVAL_MS (config.ts): a job whose worker dies is picked up again after roughly lock + 2 × stalled interval. */
export interface WorkerTimings {
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export interface TrainingWorkerOptions extends RedisSettings, WorkerTimings {
  logger: Logger;
  processor: Omit<ProcessorDeps, 'isCancelled' | 'logger' | 'announce' | 'claimPublish' | 'recordPublished' | 'publishRecord'> & {
    /** Announces a published model; gets the worker's Redis connection. */
    announce: (redis: Redis, model: Parameters<ProcessorDeps['announce']>[0]) => Promise<void>;
  };
}

export interface TrainingWorker {
  worker: Worker<JobData, JobResult>;
  /** Stops the running training at the next batch (it returns to the queue, checkpoint kept) and disconnects. */
  close(): Promise<void>;
}

export async function startTrainingWorker(options: TrainingWorkerOptions): Promise<TrainingWorker> {
  const { logger } = options;
  const keys = serviceKeys(options.prefix);
  // Aborted on close, so a worker whose Redis is down can still stop.
  const stop = new AbortController();
  // While Redis is down every reconnect attempt fails: log the first failure and the recovery, not each attempt.
  const connection = logConnectionLoss(connectRedis(options.redisUrl, 'blocking', { stop: stop.signal }), logger, 'main');
  const subscriber = logConnectionLoss(connectRedis(options.redisUrl, 'blocking', { stop: stop.signal }), logger, 'subscriber');

  const guard = new PublishGuard(connection, options.prefix);
  const processor = createTrainingProcessor({
    ...options.processor,
    logger,
    announce: (model) => options.processor.announce(connection, model),
    isCancelled: async (jobId) => (await connection.hexists(keys.cancelled, jobId)) === 1,
    claimPublish: (jobId, token) => guard.claim(jobId, token),
    recordPublished: (jobId, record) => guard.recordPublished(jobId, record),
    publishRecord: (jobId) => guard.record(jobId),
  });
  const worker = new Worker<JobData, JobResult>(QUEUE_NAME, processor, {
    connection,
    prefix: options.prefix,
    concurrency: 1,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    // A worker that dies twice on the same job (e.g. out of memory) fails it instead of looping.
    maxStalledCount: 2,
    autorun: false,
  });
  worker.on('error', (error) => {
    // While Redis is away every BullMQ retry fails; logConnectionLoss above logs the outage once.
    if (connection.status === 'ready') logger.warn({ err: error }, 'worker error');
  });
  worker.on('completed', (job, result) => logger.info({ jobId: job.id, version: result.modelVersion }, 'job completed'));
  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, err: error.message }, 'job failed'));
  worker.on('stalled', (jobId) => logger.warn({ jobId }, 'job stalled; back in the queue'));

  subscriber.on('message', (_channel, jobId: string) => {
    if (worker.cancelJob(jobId, CANCELLED_REASON)) logger.info({ jobId }, 'cancel requested; stopping at the next batch');
  });
  await subscriber.subscribe(keys.cancelChannel);
  void worker.run();
  await worker.waitUntilReady();
  const heartbeat = startHeartbeat(connection, options.prefix);
  logger.info({ queue: QUEUE_NAME, prefix: options.prefix }, 'worker ready');

  let closing: Promise<void> | undefined;
  return {
    worker,
    close() {
      closing ??= (async () => {
        worker.cancelAllJobs(SHUTDOWN_REASON);
        await heartbeat.stop();
        stop.abort();
        // Without Redis nothing can be handed back; don't wait for BullMQ's fetch loop (it would wait for Redis).
        await worker.close(connection.status !== 'ready');
        await subscriber.quit().catch(() => subscriber.disconnect());
        await connection.quit().catch(() => connection.disconnect());
      })();
      return closing;
    },
  };
}
