// Reproduction 4 of issue 10: Redis dies (kill -9) mid-job and comes back on
// the same AOF directory after the worker's job lock has expired. Before the fix
// the worker published a version, failed to complete the job ("Missing lock"),
// re-ran it and published a second version with the same job id. Now the
// worker's publish claim sees it no longer holds the lock and publishes nothing;
// the retry publishes exactly one version. Own redis-server (it gets killed) and
// short lock settings, so the outage outlasts the lock in seconds.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRedisServer, type RunningRedisServer } from '../src/lib/redis-server.ts';
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

const PREFIX = `test-exactly-once-${process.pid}`;
const SHORT_LOCKS = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };
let aofDir: string;
let redis: RunningRedisServer;
let dirs: TestDirs;
let api: TestApi;
let worker: WorkerProcess;

beforeAll(async () => {
  aofDir = await mkdtemp(join(tmpdir(), 'exactly-once-aof-'));
  redis = await startRedisServer({ dataDir: aofDir });
  dirs = await makeDirs(await writeTinyMnist(2048, 128));
  api = await startTestApi({ redisUrl: redis.url, prefix: PREFIX, dirs, env: { REDIS_URL: redis.url } });
  worker = spawnWorker({ redisUrl: redis.url, prefix: PREFIX, dirs, extra: SHORT_LOCKS });
});

afterAll(async () => {
  worker?.child.kill('SIGKILL');
  await worker?.exited;
  await api?.close();
  await redis?.stop();
  await removeTempDirs();
});

it('publishes exactly one version when Redis dies mid-job and returns after the job lock expired', async () => {
  const created = await postJson(`${api.url}/v1/jobs`, { epochs: 3, batchSize: 16 });
  const id: string = created.body.id;
  await waitFor('epoch 1 to finish', async () => {
    const job = (await getJson(`${api.url}/v1/jobs/${id}`)).body;
    return job.state === 'active' && job.metrics.length >= 1;
  }, 120_000);

  redis.process.kill('SIGKILL');
  await new Promise((resolve) => redis.process.once('exit', resolve));
  // Well past the 2 s lock: whatever the worker holds has expired when Redis is back.
  await new Promise((resolve) => setTimeout(resolve, 6000));
  redis = await startRedisServer({ dataDir: aofDir, port: redis.port });

  const done = await waitFor('the job to complete', async () => {
    const response = await fetch(`${api.url}/v1/jobs/${id}`);
    if (response.status !== 200) return undefined; // 503 while the API reconnects
    const job = await response.json();
    return job.state === 'completed' ? job : undefined;
  }, 180_000);

  const versions = (await api.registry.list()).filter((version) => version.jobId === id);
  expect(versions.map((version) => version.version)).toEqual([done.modelVersion]);
  expect(done.attempts).toBeGreaterThanOrEqual(2);
  expect(worker.output()).toContain('lost the job lock before publishing; not publishing');
  // The default moved once, to that version.
  expect((await api.registry.defaultVersion('mnist'))?.version).toBe(done.modelVersion);
});
