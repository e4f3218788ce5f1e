// Errors a job shows, against real Redis with a real worker loop: an error no retry
// can fix (an offline first run: the data set cannot be downloaded) fails the job at
// once, with the error in its view; a job waiting for its retry shows the error of
// the attempt that failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ChecksumMismatchError, DatasetFilesError, DatasetUnavailableError } from '../src/data/datasets.ts';
import { IdxFormatError } from '../src/data/idx.ts';
import { createLogger } from '../src/lib/logger.ts';
import { freePort } from '../src/lib/redis-server.ts';
import { loadConfig } from '../src/lib/config.ts';
import { isPermanentError, PERMANENT_ERROR_NAMES, type ProcessorDeps } from '../src/queue/processor.ts';
import { trainInThread } from '../src/queue/thread-runner.ts';
import { startTrainingWorker, type TrainingWorker } from '../src/queue/worker.ts';
import { CheckpointError } from '../src/training/checkpoint.ts';
import { RecipeError } from '../src/training/recipe.ts';
import { ResumeMismatchError } from '../src/training/train.ts';
import { getJson, makeDirs, postJson, removeTempDirs, startTestApi, waitFor, writeTinyMnist, type TestApi, type TestDirs } from './helpers/jobs.ts';

let dirs: TestDirs;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dirs = await makeDirs(await writeTinyMnist(64, 16));
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await removeTempDirs();
});

/** The real app and a real worker loop on their own queue prefix; `train` replaces the training thread. */
async function startQueue(prefix: string, train: ProcessorDeps['train']): Promise<{ api: TestApi; worker: TrainingWorker }> {
  const api = await startTestApi({ redisUrl: inject('redisUrl'), prefix, dirs });
  const worker = await startTrainingWorker({
    redisUrl: inject('redisUrl'),
    prefix,
    lockDurationMs: 30_000,
    stalledIntervalMs: 30_000,
    logger: createLogger(loadConfig({ LOG_LEVEL: 'silent' })),
    processor: {
      dataDir: dirs.dataDir,
      datasetDir: () => undefined, // no MNIST_DIR: the worker has to download
      engine: 'auto',
      publish: () => Promise.reject(new Error('nothing should be published')),
      announce: async () => {},
      train,
    },
  });
  cleanups.push(async () => {
    await worker.close();
    await api.close();
  });
  return { api, worker };
}

const view = async (api: TestApi, id: string) => (await getJson(`${api.url}/v1/jobs/${id}`)).body;

describe('job errors', () => {
  it('the permanent errors are named after real error classes', () => {
    const errors = [
      new DatasetUnavailableError('x'),
      new ChecksumMismatchError('u', 'a', 'b'),
      new DatasetFilesError('x'),
      new IdxFormatError('f', 'x'),
      new RecipeError('x'),
      new ResumeMismatchError('x'),
      new CheckpointError('x'),
    ];
    expect(new Set(errors.map((e) => e.name))).toEqual(PERMANENT_ERROR_NAMES);
    expect(errors.every(isPermanentError)).toBe(true);
    expect(isPermanentError(new Error('connection reset'))).toBe(false);
  });

  it('an offline first run fails at once, on its first attempt, with the download error in the job view', async () => {
    // The real training thread; the only mirror is a port nobody listens on (offline, as far as fetch can tell).
    const mirror = `http://127.0.0.1:${await freePort()}/mnist/`;
    const { api } = await startQueue(`test-joberr-offline-${process.pid}`, (options, callbacks) =>
      trainInThread({ ...options, download: { mirrors: [mirror], retryDelayMs: 10 } }, callbacks),
    );
    const created = await postJson(`${api.url}/v1/jobs`, { epochs: 1, batchSize: 32 });
    expect(created.status).toBe(202);
    const failed = await waitFor('the job to fail', async () => {
      const job = await view(api, created.body.id);
      return job.state === 'failed' ? job : undefined;
    });
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatch(/^could not download train-images-idx3-ubyte\.gz from http:\/\/127\.0\.0\.1:\d+\/mnist\/ \(offline\?\); pass --data-dir or set MNIST_DIR/);
  });

  it("a job waiting for its retry (and running it) shows the failed attempt's error", async () => {
    let attempt = 0;
    let release: () => void = () => {};
    const { api } = await startQueue(`test-joberr-retry-${process.pid}`, async () => {
      attempt += 1;
      if (attempt === 2) await new Promise<void>((resolve) => (release = resolve)); // hold attempt 2 while active
      throw new Error(`attempt ${attempt}: connection to the data store reset`);
    });
    const created = await postJson(`${api.url}/v1/jobs`, { epochs: 1, batchSize: 32 });
    const id = created.body.id as string;
    const retrying = await waitFor('attempt 1 to fail', async () => {
      const job = await view(api, id);
      return job.attempts === 1 && job.error ? job : undefined;
    });
    expect(retrying).toMatchObject({ state: 'queued', error: 'attempt 1: connection to the data store reset' });
    // The retry (after BullMQ's 5 s back-off) runs; until it fails, attempt 1's error is the last one.
    const running = await waitFor('attempt 2 to start', async () => {
      const job = await view(api, id);
      return job.state === 'active' && job.attempts === 2 ? job : undefined;
    });
    expect(running.error).toBe('attempt 1: connection to the data store reset');
    release();
    const again = await waitFor('attempt 2 to fail', async () => {
      const job = await view(api, id);
      return job.state === 'queued' && job.error?.startsWith('attempt 2') ? job : undefined;
    });
    expect(again).toMatchObject({ attempts: 2, error: 'attempt 2: connection to the data store reset' });
    expect((await postJson(`${api.url}/v1/jobs/${id}/cancel`)).status).toBeLessThan(300);
  });
});
