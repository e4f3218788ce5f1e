// The publish claim and the cancel, against real Redis: whichever comes first
// wins, a worker whose lock token is no longer the job's cannot claim, and a
// retry finds the claim (or the finished publish) of an earlier attempt. Then the
// processor's use of them: a retry of a job that already published completes with
// that version without training or publishing again.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { UnrecoverableError, type Job } from 'bullmq';
import { QUEUE_NAME } from '../src/queue/connection.ts';
import { createTrainingProcessor, type ProcessorDeps } from '../src/queue/processor.ts';
import { PublishGuard } from '../src/queue/publish-guard.ts';
import type { JobData, JobResult } from '../src/queue/schema.ts';
import type { PublishResult } from '../src/registry/types.ts';
import { createLogger } from '../src/lib/logger.ts';
import { loadConfig } from '../src/lib/config.ts';

const PREFIX = `test-guard-${process.pid}`;
let redis: Redis;
let guard: PublishGuard;
let counter = 0;
const newJobId = () => `job-${++counter}`;
const lockKey = (jobId: string) => `${PREFIX}:${QUEUE_NAME}:${jobId}:lock`;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  guard = new PublishGuard(redis, PREFIX);
});

afterAll(async () => {
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('PublishGuard', () => {
  it('claims only while the worker holds the job lock', async () => {
    const jobId = newJobId();
    await redis.set(lockKey(jobId), 'token-a', 'PX', 5000);
    expect(await guard.claim(jobId, 'token-b')).toEqual({ outcome: 'lock-lost' });
    await redis.del(lockKey(jobId));
    expect(await guard.claim(jobId, 'token-a')).toEqual({ outcome: 'lock-lost' });
    await redis.set(lockKey(jobId), 'token-a', 'PX', 5000);
    expect(await guard.claim(jobId, 'token-a')).toEqual({ outcome: 'claimed', record: { state: 'publishing' } });
  });

  it('a cancel before the claim wins: the claim is refused', async () => {
    const jobId = newJobId();
    expect(await guard.cancel(jobId, JSON.stringify({ cancelledAt: 1 }))).toBeUndefined();
    expect(await guard.claim(jobId, undefined)).toEqual({ outcome: 'cancelled' });
  });

  it('a claim before the cancel wins: the cancel is refused with the publish record, and no cancel mark is set', async () => {
    const jobId = newJobId();
    await guard.claim(jobId, undefined);
    expect(await guard.cancel(jobId, JSON.stringify({ cancelledAt: 1 }))).toEqual({ state: 'publishing' });
    await guard.recordPublished(jobId, { version: 'v0001-abcdef', model: 'mnist', promoted: true, promotion: 'promoted' });
    expect(await guard.cancel(jobId, JSON.stringify({ cancelledAt: 2 }))).toMatchObject({ state: 'published', version: 'v0001-abcdef' });
    expect(await redis.hexists(`${PREFIX}:${QUEUE_NAME}:svc:cancelled`, jobId)).toBe(0);
    // A retry's claim returns what the first attempt left.
    expect(await guard.claim(jobId, undefined)).toMatchObject({ outcome: 'claimed', record: { state: 'published', version: 'v0001-abcdef' } });
  });
});

describe('the processor', () => {
  const logger = createLogger(loadConfig({ LOG_LEVEL: 'silent' }));
  function fakeJob(id: string): Job<JobData, JobResult> {
    return {
      id,
      data: { request: { dataset: 'mnist', epochs: 1, batchSize: 8, learningRate: 0.01, momentum: 0.9, seed: 1, promote: 'never' } },
      progress: 0,
      attemptsStarted: 2,
      updateProgress: async () => {},
      log: async () => 0,
    } as unknown as Job<JobData, JobResult>;
  }
  function deps(calls: string[], overrides: Partial<ProcessorDeps> = {}): ProcessorDeps {
    return {
      dataDir: '/nonexistent',
      datasetDir: () => undefined,
      engine: 'cpu',
      logger,
      train: async () => {
        calls.push('train');
        return { metrics: [], modelDir: '/nonexistent/model', engine: 'cpu', outcome: 'completed' };
      },
      publish: async (_dir, metadata, options) => {
        calls.push(`publish ${metadata.model} ${options.promote}`);
        const version = { version: 'v0002-abcdef', model: 'mnist', promotion: { promoted: false, reason: 'never', previous: null }, reused: false };
        return version as unknown as PublishResult;
      },
      announce: async () => void calls.push('announce'),
      isCancelled: async () => false,
      claimPublish: (jobId, token) => guard.claim(jobId, token),
      recordPublished: (jobId, record) => guard.recordPublished(jobId, record),
      publishRecord: (jobId) => guard.record(jobId),
      ...overrides,
    };
  }

  it('a retry of a job whose publish completed returns that version without training or publishing again', async () => {
    const jobId = newJobId();
    await guard.claim(jobId, undefined);
    await guard.recordPublished(jobId, { version: 'v0001-abcdef', model: 'mnist', promoted: true, promotion: 'promoted' });
    const calls: string[] = [];
    const result = await createTrainingProcessor(deps(calls))(fakeJob(jobId), undefined, new AbortController().signal);
    expect(result).toMatchObject({ modelVersion: 'v0001-abcdef', model: 'mnist', promoted: true });
    expect(calls).toEqual([]);
  });

  it('trains, claims, publishes with the job\'s policy and records the outcome', async () => {
    const jobId = newJobId();
    const calls: string[] = [];
    const result = await createTrainingProcessor(deps(calls))(fakeJob(jobId), undefined, new AbortController().signal);
    expect(calls).toEqual(['train', 'publish mnist never', 'announce']);
    expect(result).toMatchObject({ modelVersion: 'v0002-abcdef', promoted: false, promotion: 'never' });
    expect(await guard.record(jobId)).toMatchObject({ state: 'published', version: 'v0002-abcdef' });
  });

  it('a cancel that arrives while training finishes is honoured: nothing is published', async () => {
    const jobId = newJobId();
    const calls: string[] = [];
    const train: ProcessorDeps['train'] = async () => {
      calls.push('train');
      // The cancel lands after the last batch (the trainer no longer looks at the signal).
      await guard.cancel(jobId, JSON.stringify({ cancelledAt: Date.now() }));
      return { metrics: [], modelDir: '/nonexistent/model', engine: 'cpu', outcome: 'completed' };
    };
    const run = createTrainingProcessor(deps(calls, { train }))(fakeJob(jobId), undefined, new AbortController().signal);
    await expect(run).rejects.toThrow(UnrecoverableError);
    expect(calls).toEqual(['train']);
  });

  it('a worker that lost the job lock does not publish', async () => {
    const jobId = newJobId();
    const calls: string[] = [];
    const run = createTrainingProcessor(deps(calls))(fakeJob(jobId), 'expired-token', new AbortController().signal);
    await expect(run).rejects.toThrow(/lost the lock of job .* before publishing/);
    expect(calls).toEqual(['train']);
  });
});
