// A real `digits worker` process training real (tiny) jobs from the API:
// create → follow over SSE → completed → model published; cancelling an active job.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  getJson,
  makeDirs,
  openEvents,
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

const PREFIX = `test-worker-${process.pid}`;
let dirs: TestDirs;
let api: TestApi;
let worker: WorkerProcess;

beforeAll(async () => {
  dirs = await makeDirs(await writeTinyMnist(512, 128));
  api = await startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs });
  worker = spawnWorker({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs });
});

afterAll(async () => {
  worker?.child.kill('SIGTERM');
  await worker?.exited;
  await api?.close();
  await removeTempDirs();
});

const job = async (id: string) => (await getJson(`${api.url}/v1/jobs/${id}`)).body;

describe('a job run by a worker', () => {
  it('reports progress and epochs over SSE, completes, and publishes its model', async () => {
    const created = await postJson(`${api.url}/v1/jobs`, { epochs: 2, batchSize: 64, name: 'sse' });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    const stream = await openEvents(`${api.url}/v1/jobs/${id}/events`);
    await stream.ended;

    const names = stream.events.map((e) => e.event);
    expect(names[0]).toBe('state');
    expect(names.at(-1)).toBe('completed');
    expect(names.filter((n) => n === 'epoch')).toHaveLength(2);
    expect(stream.events.filter((e) => e.event === 'epoch').map((e) => e.data.metrics.epoch)).toEqual([1, 2]);
    const progressEvents = stream.events.filter((e) => e.event === 'progress').map((e) => e.data);
    // The engine is named from the first progress event on, before any batch has run.
    expect(progressEvents[0].engine).toEqual(expect.any(String));
    const progress = progressEvents.map((data) => data.progress).filter((p) => p !== null);
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p).toMatchObject({ epochs: 2, batches: 8, etaSeconds: expect.any(Number), runningLoss: expect.any(Number), loss: expect.any(Number) });
      expect(p.fraction).toBeGreaterThan(0);
      expect(p.fraction).toBeLessThanOrEqual(1);
    }

    const done = stream.events.at(-1)!.data;
    expect(done).toMatchObject({ id, state: 'completed', attempts: 1, error: null, resumedFromEpoch: null });
    expect(done.metrics.map((m: { epoch: number }) => m.epoch)).toEqual([1, 2]);
    expect(done.engine).toEqual(expect.any(String));
    // Every batch's loss is on the curve (16 batches are far below its bound): x runs 1/8, 2/8, … 2 epochs.
    expect(done.lossCurve.batchesPerPoint).toBe(1);
    expect(done.lossCurve.points.map(([x]: [number, number]) => x)).toEqual(Array.from({ length: 16 }, (_, i) => (i + 1) / 8));
    for (const [, loss] of done.lossCurve.points) expect(loss).toBeGreaterThan(0);
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    expect(await job(id)).toEqual(done);

    // The version it names is in the registry, made from this job.
    const model = await getJson(`${api.url}/v1/models/${done.modelVersion}`);
    expect(model.status).toBe(200);
    expect(model.body).toMatchObject({ version: done.modelVersion, jobId: id, dataset: 'mnist', latest: true });
    expect(model.body.metrics).toEqual(done.metrics);
    expect((await getJson(`${api.url}/v1/models`)).body.models.map((m: { version: string }) => m.version)).toContain(done.modelVersion);

    // Finished jobs cannot be cancelled.
    const cancel = await postJson(`${api.url}/v1/jobs/${id}/cancel`);
    expect(cancel.status).toBe(409);
    expect(cancel.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(cancel.body.detail).toContain('completed');
  });

  it('stops an active job at the next batch when cancelled, keeps its checkpoint, and does not retry it', async () => {
    const { body: created } = await postJson(`${api.url}/v1/jobs`, { epochs: 50, batchSize: 16, name: 'to-cancel' });
    const id = created.id as string;
    // Wait until one epoch is checkpointed and the next is under way.
    await waitFor('the job to train its second epoch', async () => (await job(id)).progress?.epoch >= 2);

    const stream = await openEvents(`${api.url}/v1/jobs/${id}/events`);
    const cancel = await postJson(`${api.url}/v1/jobs/${id}/cancel`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.state).toBe('active');
    await stream.ended;
    expect(stream.events.at(-1)).toMatchObject({ event: 'cancelled', data: { id, state: 'cancelled' } });

    const cancelled = await job(id);
    expect(cancelled).toMatchObject({ state: 'cancelled', attempts: 1, modelVersion: null, error: null });
    expect(cancelled.metrics.length).toBeGreaterThanOrEqual(1);
    expect(cancelled.metrics.length).toBeLessThan(50);
    expect(existsSync(join(dirs.dataDir, 'runs', id, 'checkpoint', 'latest.json'))).toBe(true);
    expect(existsSync(join(dirs.dataDir, 'runs', id, 'model'))).toBe(false);
    const models = (await getJson(`${api.url}/v1/models`)).body.models as { jobId: string }[];
    expect(models.map((m) => m.jobId)).not.toContain(id);
    expect((await postJson(`${api.url}/v1/jobs/${id}/cancel`)).status).toBe(200);

    // The worker carries on with the next job.
    const { body: next } = await postJson(`${api.url}/v1/jobs`, { epochs: 1, limit: 128 });
    await waitFor('the next job to complete', async () => (await job(next.id)).state === 'completed');
  });
});
