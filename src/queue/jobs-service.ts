// The API's side of the training queue: create (with Idempotency-Key), get,
// list, cancel and follow jobs. Every Redis round trip is bounded: if Redis is
// down or does not answer within timeoutMs, callers get QueueUnavailableError (503).
import { isRedisUnavailableError } from '../lib/redis-errors.ts';
import { createHash, randomUUID } from 'node:crypto';
import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  connectRedis,
  createQueueEvents,
  createTrainingQueue,
  JOB_NAME,
  serviceKeys,
  type QueueSettings,
  type TrainingQueue,
} from './connection.ts';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  InvalidRequestError,
  JobAlreadyPublishedError,
  JobNotFoundError,
  JobStateConflictError,
  QueueUnavailableError,
} from './errors.ts';
import { JobEventHub, type QueueChange } from './job-events.ts';
import { PublishGuard } from './publish-guard.ts';
import { isFinished, toJobView, type CancelRecord } from './job-view.ts';
import type { JobRequest, JobState, JobView } from './schema.ts';
import { readProgress } from './schema.ts';
import type { BatchProgress, EpochMetrics } from '../training/types.ts';
import type { LossCurve } from './loss-curve.ts';

/** Job ids are UUIDs we issue; anything else cannot name a job (and never reaches a Redis key). */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
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

/** What GET /v1/jobs/:id/events sends, in order: the current job, then its changes until it ends. */
export type JobEvent =
  | { event: 'state'; data: JobView }
  | { event: 'progress'; data: { id: string; state: 'active'; progress: BatchProgress | null; engine: string | null; lossCurve: LossCurve } }
  | { event: 'epoch'; data: { id: string; metrics: EpochMetrics } }
  | { event: 'completed' | 'failed' | 'cancelled'; data: JobView };

export interface JobsServiceOptions extends QueueSettings {
  /** Longest wait for Redis per operation before answering 503 (default 2000). */
  timeoutMs?: number;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with sorted keys, so equal requests have equal fingerprints whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}


export interface JobsServiceParts {
  queue: TrainingQueue;
  /** A fail-fast connection (connectRedis(url, 'api')), also used by queue. */
  redis: Redis;
  queueEvents: QueueEvents;
  settings: QueueSettings;
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
    parts.queueEvents.on('removed', ({ jobId }) => void this.forgetIfGone(jobId).catch(() => {}));
    this.timeoutMs = parts.timeoutMs ?? 2000;
    this.ownedConnections = parts.ownedConnections ?? [];
    this.stopReconnecting = parts.stopReconnecting ?? (() => {});
  }

  /** Connects to Redis lazily: while Redis is down, requests get 503 until it is back. */
  static connect(options: JobsServiceOptions): JobsService {
    const stop = new AbortController();
    // Errors surface per request as 503s; without listeners every failed reconnect would be logged.
    const ignore = () => {};
    const redis = connectRedis(options.redisUrl, 'api', stop.signal).on('error', ignore);
    const queue = createTrainingQueue(options, redis);
    queue.on('error', ignore);
    const eventsConnection = connectRedis(options.redisUrl, 'blocking', stop.signal).on('error', ignore);
    const queueEvents = createQueueEvents(options, eventsConnection);
    queueEvents.on('error', ignore);
    return new JobsService({
      queue,
      redis,
      queueEvents,
      settings: options,
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
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, reachable ? CLOSE_GRACE_MS : 0)));
    await Promise.race([Promise.allSettled([this.queueEvents.close(), this.queue.close()]), grace]);
    clearTimeout(timer);
    for (const connection of connections) connection.disconnect();
  }

  /** Runs a Redis operation with a deadline; connection trouble becomes QueueUnavailableError. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([operation(), deadline]);
    } catch (error) {
      if (isRedisUnavailableError(error) || (this.redis.status !== 'ready' && !('statusCode' in (error as object)))) {
        throw new QueueUnavailableError(error);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queues a job. With an idempotency key, a repeat of the same request returns the first job (created: false). */
  create(request: JobRequest, idempotencyKey?: string): Promise<{ job: JobView; created: boolean }> {
    return this.guard(async () => {
      if (idempotencyKey === undefined) return { job: await this.add(randomUUID(), request), created: true };
      const key = this.keys.idempotency(sha256(idempotencyKey));
      const fingerprint = sha256(canonicalJson(request));
      const jobId = randomUUID();
      const claimed = await this.redis.set(key, JSON.stringify({ jobId, fingerprint }), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
      if (claimed === 'OK') {
        try {
          return { job: await this.add(jobId, request), created: true };
        } catch (error) {
          await this.redis.del(key).catch(() => {});
          throw error;
        }
      }
      const stored = await this.redis.get(key);
      if (stored === null) throw new IdempotencyKeyInFlightError();
      const earlier = JSON.parse(stored) as { jobId: string; fingerprint: string };
      if (earlier.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(earlier.jobId);
      const job = await this.find(earlier.jobId);
      if (!job) throw new IdempotencyKeyInFlightError();
      return { job, created: false };
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
    return toJobView(job, await job.getState(), cancel);
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
  async *events(id: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
    const changes: QueueChange[] = [];
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    // Subscribe before reading the job, so nothing that happens in between is missed.
    const unsubscribe = this.hub.subscribe(id, (change) => {
      changes.push(change);
      notify();
    });
    signal.addEventListener('abort', notify);
    try {
      let job = await this.get(id);
      yield { event: 'state', data: job };
      let lastEpoch = job.metrics.at(-1)?.epoch ?? 0;
      while (!isFinished(job.state) && !signal.aborted) {
        const change = changes.shift();
        if (!change) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        if (change.type === 'progress') {
          for (const metrics of change.progress.metrics.filter((m) => m.epoch > lastEpoch)) {
            yield { event: 'epoch', data: { id, metrics } };
            lastEpoch = metrics.epoch;
          }
          // Also before the first batch: the engine is known from the start.
          const { batch, engine, lossCurve } = change.progress;
          yield { event: 'progress', data: { id, state: 'active', progress: batch, engine, lossCurve } };
          continue;
        }
        const previous = job.state;
        job = await this.get(id).catch((error: unknown) => {
          // A queued job that was cancelled is removed; its snapshot may be written a moment later.
          if (error instanceof JobNotFoundError && change.to === 'removed') return { ...job, state: 'cancelled' as const };
          throw error;
        });
        if (!isFinished(job.state) && job.state !== previous) yield { event: 'state', data: job };
      }
      if (isFinished(job.state)) yield { event: job.state as 'completed' | 'failed' | 'cancelled', data: job };
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', notify);
    }
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
