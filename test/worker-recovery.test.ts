// Workers that go away mid-job: killed with SIGKILL (the job stalls, another
// worker recovers it) or stopped with SIGTERM (the job goes back to the queue).
// Either way the next worker resumes from the last checkpoint and publishes.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  getJson,
  makeDirs,
  postJson,
  removeTempDirs,
  spawnWorker,
  startTestApi,
  waitFor,
  writeTinyMnist,
  type TestApi,
  type TestDirs,
  type WorkerProcess,
} from './helpers/jobs.ts';

const PREFIX = `test-worker-recovery-${process.pid}`;
// Short locks so a dead worker's job is recovered in seconds, not a minute.
const FAST_STALLS = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };
let dirs: TestDirs;
let api: TestApi;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  // Enough batches per epoch that a worker is reliably stopped mid-epoch, even on a fast engine.
  dirs = await makeDirs(await writeTinyMnist(4096, 128));
  api = await startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs });
});

afterEach(async () => {
  for (const worker of workers.splice(0)) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
});

afterAll(async () => {
  await api?.close();
  await removeTempDirs();
});

function startWorker(): WorkerProcess {
  const worker = spawnWorker({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs, extra: FAST_STALLS });
  workers.push(worker);
  return worker;
}

const job = async (id: string) => (await getJson(`${api.url}/v1/jobs/${id}`)).body;

/** Queues a 2-epoch job and waits until its first epoch is checkpointed and the second is under way. */
async function jobInSecondEpoch(): Promise<string> {
  const { body } = await postJson(`${api.url}/v1/jobs`, { epochs: 2, batchSize: 16 });
  await waitFor('the job to reach its second epoch', async () => {
    const current = await job(body.id);
    return current.state === 'active' && current.progress?.epoch === 2 && current.metrics.length === 1;
  });
  return body.id as string;
}

async function expectResumedAndPublished(id: string) {
  const done = await waitFor('the job to complete', async () => {
    const current = await job(id);
    return current.state === 'completed' ? current : undefined;
  }, 90_000);
  expect(done.resumedFromEpoch).toBe(2);
  expect(done.metrics.map((m: { epoch: number }) => m.epoch)).toEqual([1, 2]);
  const model = await getJson(`${api.url}/v1/models/${done.modelVersion}`);
  expect(model.status).toBe(200);
  expect(model.body).toMatchObject({ jobId: id, version: done.modelVersion });
  return done;
}

it('recovers the job of a worker killed with SIGKILL and resumes it from its checkpoint', async () => {
  const first = startWorker();
  const id = await jobInSecondEpoch();
  first.child.kill('SIGKILL');
  expect(await first.exited).toBe('SIGKILL');
  // Nobody holds it, but until its lock expires it still looks active.
  expect((await job(id)).state).toBe('active');

  const second = startWorker();
  const done = await expectResumedAndPublished(id);
  // Started twice: once by the killed worker, once after the stall.
  expect(done.attempts).toBe(2);
  expect(second.output()).toContain('resuming from checkpoint');
});

it('puts the job of a worker stopped with SIGTERM back in the queue; the next worker resumes it', async () => {
  const first = startWorker();
  const id = await jobInSecondEpoch();
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);
  const requeued = await job(id);
  expect(requeued.state).toBe('queued');
  expect(requeued.error).toBeNull();

  startWorker();
  await expectResumedAndPublished(id);
});
