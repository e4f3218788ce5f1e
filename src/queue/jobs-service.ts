// The API's side of the training queue: create (with Idempotency-Key), get,
// list, cancel and follow jobs. Every Redis round trip is bounded: if Redis is
// down or does not answer within timeoutMs, callers get QueueUnavailableError (503).
import type { Logger } from '../lib/logger.ts';
import { connectRedis, logConnectionLoss, type RedisSettings } from '../lib/redis.ts';
import { randomUUID } from 'node:crypto';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { createQueueEvents, createTrainingQueue, JOB_NAME, serviceKeys, type TrainingQueue } from './connection.ts';
import {
  InvalidRequestError,
  JobAlreadyPublishedError,
  JobNotFoundError,
  JobStateConflictError,
} from './errors.ts';
import { JobEventHub } from './job-events.ts';
import { jobEvents, type JobEvent } from './job-stream.ts';
import { createOnce } from './idempotency.ts';
import { withDeadline } from './redis-deadline.ts';
import { PublishGuard } from './publish-guard.ts';
import { isFinished, toJobView, type CancelRecord } from './job-view.ts';
import type { JobRequest, JobState, JobView } from './schema.ts';
import { readProgress } from './schema.ts';
import { waitAtMost } from '../lib/wait-at-most.ts';

/** Job ids are UUIDs we issue; anything else cannot name a job (and never reaches a Redis key). */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Retries resume from the last checkpoint, so a transient failure costs at most one epoch. */
const JOB_OPTIONS = { attempts: 3, backoff: { type: 'exponential', delay: 5000 } } as const;
/** GET /v1/jobs with a state filter examines at most this many jobs per page. */
const LIST_SCAN_LIMIT = 1000;
/** An index entry this old without a BullMQ job was removed by other tooling (younger: the job is being added). */
const ORPHAN_AFTER_MS = 60_000;

export interface ListJobsOptions {
  state?: JobState;
  limit: number;
  /** The id of the last job of the previous page. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobView[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface JobsServiceOptions extends RedisSettings {
  /** Longest wait for Redis per operation before answering 503 (default 2000). */
  timeoutMs?: number;
  /** Hears about losing and regaining Redis (once per outage); requests see 503s meanwhile. */
  logger: Pick<Logger, 'warn' | 'info'>;
}

export interface JobsServiceParts {
  queue: TrainingQueue;
  /** A fail-fast connection (connectRedis(url, 'api')), also used by queue. */
  redis: Redis;
  queueEvents: QueueEvents;
  settings: RedisSettings;
  timeoutMs?: number;
  /** Connections to close with the service (beyond redis). */
  ownedConnections?: Redis[];
  /** Called first by close(): makes the connections give up reconnecting. */
  stopReconnecting?: () => void;
}

/** How long close() lets BullMQ finish politely before cutting the connections (Redis may have gone mid-close). */
const CLOSE_GRACE_MS = 2000;

export class JobsService {
  private readonly queue: TrainingQueue;
  private readonly redis: Redis;
  private readonly queueEvents: QueueEvents;
  private readonly keys: ReturnType<typeof serviceKeys>;
  private readonly hub: JobEventHub;
  private readonly timeoutMs: number;
  private readonly ownedConnections: Redis[];
  private readonly stopReconnecting: () => void;
  private readonly publishGuard: PublishGuard;

  constructor(parts: JobsServiceParts) {
    this.queue = parts.queue;
    this.redis = parts.redis;
    this.queueEvents = parts.queueEvents;
    this.keys = serviceKeys(parts.settings.prefix);
    this.hub = new JobEventHub(parts.queueEvents);
    this.publishGuard = new PublishGuard(parts.redis, parts.settings.prefix);
    // Jobs removed by standard BullMQ tooling (Bull Board, queue.remove, clean) leave our index too.
    // Best effort: an index entry left behind (Redis away now) is cleaned up when a listing finds it orphaned.
    parts.queueEvents.on('removed', ({ jobId }) => void this.forgetIfGone(jobId).catch(() => {}));
    this.timeoutMs = parts.timeoutMs ?? 2000;
    this.ownedConnections = parts.ownedConnections ?? [];
    this.stopReconnecting = parts.stopReconnecting ?? (() => {});
  }

  /** Connects to Redis lazily: while Redis is down, requests get 503 until it is back. */
  static connect(options: JobsServiceOptions): JobsService {
    const stop = new AbortController();
    // Errors surface per request as 503s; the log gets one line when Redis goes and one when it is back.
    const { logger } = options;
    const redis = logConnectionLoss(connectRedis(options.redisUrl, 'api', { stop: stop.signal }), logger, 'jobs');
    const queue = createTrainingQueue(options, redis);
    queue.on('error', () => {
      // The same failure as on its connection `redis`, which logs it once per outage.
    });
    const eventsConnection = logConnectionLoss(connectRedis(options.redisUrl, 'blocking', { stop: stop.signal }), logger, 'job events');
    const queueEvents = createQueueEvents(options, eventsConnection);
    queueEvents.on('error', () => {
      // The same failure as on its connection `eventsConnection`, which logs it once per outage.
    });
    return new JobsService({
      queue,
      redis,
      queueEvents,
      settings: { redisUrl: options.redisUrl, prefix: options.prefix },
      timeoutMs: options.timeoutMs,
      ownedConnections: [eventsConnection],
      stopReconnecting: () => stop.abort(),
    });
  }

  async close(): Promise<void> {
    // A Redis that never came up would otherwise keep BullMQ waiting for "ready" forever.
    this.stopReconnecting();
    const connections = [this.redis, ...this.ownedConnections];
    // A Redis that went away: BullMQ's close would wait for replies that never come; cut the connections and don't wait.
    const reachable = connections.every((connection) => connection.status === 'ready');
    if (!reachable) for (const connection of connections) connection.disconnect();
    await waitAtMost(Promise.allSettled([this.queueEvents.close(), this.queue.close()]), reachable ? CLOSE_GRACE_MS : 0);
    for (const connection of connections) connection.disconnect();
  }

  /** Runs a Redis operation with a deadline; connection trouble becomes QueueUnavailableError. */
  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return withDeadline(this.redis, this.timeoutMs, operation);
  }

  /** Queues a job. With an idempotency key, a repeat of the same request returns the first job (created: false). */
  create(request: JobRequest, idempotencyKey?: string): Promise<{ job: JobView; created: boolean }> {
    return this.guard(async () => {
      if (idempotencyKey === undefined) return { job: await this.add(randomUUID(), request), created: true };
      return createOnce(this.redis, this.keys, idempotencyKey, request, {
        add: (jobId) => this.add(jobId, request),
        find: (jobId) => this.find(jobId),
      });
    });
  }

  private async add(jobId: string, request: JobRequest): Promise<JobView> {
    // Index first: an index entry without a job is skipped by list, a job without one would be invisible.
    await this.redis.zadd(this.keys.index, Date.now(), jobId);
    const job = await this.queue.add(JOB_NAME, { request }, { ...JOB_OPTIONS, jobId });
    return toJobView(job, 'waiting', undefined);
  }

  get(id: string): Promise<JobView> {
    return this.guard(async () => {
      const job = await this.find(id);
      if (!job) throw new JobNotFoundError(id);
      return job;
    });
  }

  private async find(id: string): Promise<JobView | undefined> {
    if (!JOB_ID.test(id)) return undefined;
    const [job, cancelJson] = await Promise.all([this.queue.getJob(id), this.redis.hget(this.keys.cancelled, id)]);
    const cancel = cancelJson ? (JSON.parse(cancelJson) as CancelRecord) : undefined;
    if (!job) return cancel?.snapshot;
    const state = await job.getState();
    // Finished between the two reads: read the job again, so the view has its result or error.
    const current = (state === 'completed' || state === 'failed') && !job.finishedOn ? ((await this.queue.getJob(id)) ?? job) : job;
    return toJobView(current, state, cancel);
  }

  /** Newest first. With a state filter a page may hold fewer than `limit` jobs while nextCursor is not null. */
  list(options: ListJobsOptions): Promise<JobPage> {
    return this.guard(async () => {
      let start = 0;
      if (options.cursor !== undefined) {
        const rank = JOB_ID.test(options.cursor) ? await this.redis.zrevrank(this.keys.index, options.cursor) : null;
        if (rank === null) throw new InvalidRequestError(`cursor ${JSON.stringify(options.cursor)} is not a nextCursor from an earlier page`);
        start = rank + 1;
      }
      const jobs: JobView[] = [];
      let position = start;
      let lastExamined: string | undefined;
      while (jobs.length < options.limit && position - start < LIST_SCAN_LIMIT) {
        const ids = await this.redis.zrevrange(this.keys.index, position, position + options.limit - 1);
        if (ids.length === 0) break;
        const scores = await this.redis.zmscore(this.keys.index, ...ids);
        for (const [i, id] of ids.entries()) {
          position += 1;
          lastExamined = id;
          const job = await this.find(id);
          if (!job && Date.now() - Number(scores[i] ?? Date.now()) > ORPHAN_AFTER_MS) await this.forgetIfGone(id);
          if (job && (!options.state || job.state === options.state)) jobs.push(job);
          if (jobs.length === options.limit) break;
        }
      }
      const more = position < (await this.redis.zcard(this.keys.index));
      return { jobs, nextCursor: more && lastExamined ? lastExamined : null };
    });
  }

  /**
   * Queued: removed from the queue, shown as cancelled from then on. Active: the
   * worker running it is told (pub/sub) and stops at the next batch boundary,
   * keeping its checkpoint; the job shows cancelled once it has stopped.
   */
  cancel(id: string): Promise<JobView> {
    return this.guard(async () => {
      const job = await this.find(id);
      if (!job) throw new JobNotFoundError(id);
      if (job.state === 'cancelled') return job;
      if (job.state === 'completed' && job.modelVersion) throw new JobAlreadyPublishedError(id, job.modelVersion);
      if (isFinished(job.state)) throw new JobStateConflictError(id, job.state, 'cancelled');
      const cancelledAt = Date.now();
      const snapshot: JobView = { ...job, state: 'cancelled', finishedAt: new Date(cancelledAt).toISOString() };
      // Mark first, so a worker that takes the job right now still sees it is cancelled.
      const record: CancelRecord = job.state === 'queued' ? { cancelledAt, snapshot } : { cancelledAt };
      // Atomic with the worker's publish claim: once it has claimed, the cancel is refused, never accepted and ignored.
      const published = await this.publishGuard.cancel(id, JSON.stringify(record));
      if (published) throw new JobAlreadyPublishedError(id, published.version ?? null);
      await this.redis.publish(this.keys.cancelChannel, id);
      // 0 means a worker has locked it meanwhile; that worker will see the mark.
      if (job.state === 'queued' && (await this.queue.remove(id)) === 1) return snapshot;
      return (await this.find(id)) ?? snapshot;
    });
  }

  /**
   * Drops a job from our index and records once BullMQ no longer has it. A queued
   * job we cancelled ourselves is kept: its snapshot in the cancel hash is its only trace.
   */
  private async forgetIfGone(id: string): Promise<void> {
    if (!JOB_ID.test(id) || (await this.queue.getJob(id))) return;
    const cancel = await this.redis.hget(this.keys.cancelled, id);
    if (cancel && (JSON.parse(cancel) as CancelRecord).snapshot) return;
    await this.redis.multi().zrem(this.keys.index, id).hdel(this.keys.cancelled, id).hdel(this.keys.published, id).exec();
  }

  /**
   * The job's events: its current view first, then progress, epochs and state
   * changes, ending with completed, failed or cancelled. Stops early when signal aborts.
   */
  events(id: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
    return jobEvents(this.hub, (jobId) => this.get(jobId), id, signal);
  }

  /**
   * Calls listener once for each job this process sees finish (completed, failed
   * or cancelled), with its final view, for the job metrics. Jobs that only move
   * on to a retry are not finished. Returns the function that stops listening.
   */
  onFinished(listener: (job: JobView) => void): () => void {
    const seen = new Set<string>();
    const check = ({ jobId }: { jobId: string }) => {
      if (seen.has(jobId)) return;
      void this.guard(() => this.find(jobId))
        .then((job) => {
          if (!job || !isFinished(job.state) || seen.has(jobId)) return;
          seen.add(jobId);
          // Bounded: ids are only kept to ignore a second event (failed, then removed) for the same job.
          if (seen.size > 10_000) seen.delete(seen.values().next().value!);
          listener(job);
        })
        .catch(() => {}); // Redis away: this job goes uncounted rather than failing anything
    };
    const events = ['completed', 'failed', 'removed'] as const;
    for (const event of events) this.queueEvents.on(event, check);
    return () => {
      for (const event of events) this.queueEvents.off(event, check);
    };
  }

  /** Resolves when Redis answers (GET /readyz). */
  ping(): Promise<void> {
    return this.guard(async () => {
      await this.redis.ping();
    });
  }

  /** Jobs by BullMQ state and the progress of active ones, for GET /metrics (read at scrape time). */
  stats(): Promise<{ counts: Record<string, number>; active: { id: string; epoch: number; epochs: number; testAccuracy: number | null }[] }> {
    return this.guard(async () => {
      const [counts, active] = await Promise.all([this.queue.getJobCounts(), this.queue.getActive()]);
      return {
        counts,
        active: active.map((job) => {
          const progress = readProgress(job.progress);
          const epochs = progress.batch?.epochs ?? job.data.request.epochs;
          return { id: job.id!, epoch: progress.batch?.epoch ?? 0, epochs, testAccuracy: progress.metrics.at(-1)?.testAccuracy ?? null };
        }),
      };
    });
  }
}
