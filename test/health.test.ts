// `digits health`, the worker's health check (Docker HEALTHCHECK): healthy exactly
// while a real `digits worker` on this host is running and Redis answers.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { freePort } from '../src/lib/redis-server.ts';
import { makeDirs, removeTempDirs, REPO_ROOT, spawnWorker, waitFor, writeTinyMnist, type TestDirs, type WorkerProcess } from './helpers/jobs.ts';

const execFileAsync = promisify(execFile);
const PREFIX = `test-health-${process.pid}`;
let dirs: TestDirs;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  dirs = await makeDirs(await writeTinyMnist(64, 16));
});

afterAll(async () => {
  worker?.child.kill('SIGTERM');
  await worker?.exited;
  await removeTempDirs();
});

/** `digits health` → its exit code and output. */
async function health(redisUrl: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'health'], {
    cwd: REPO_ROOT,
    timeout: 30_000,
    env: { ...process.env, REDIS_URL: redisUrl, QUEUE_PREFIX: PREFIX },
  }).then(
    (ok) => ({ code: 0, ...ok }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

it('fails while no worker runs, passes while one does (naming its pid), fails again once it stopped', async () => {
  const before = await health(inject('redisUrl'));
  expect(before.code).toBe(1);
  expect(before.stderr).toMatch(/^digits health: no worker heartbeat from .+ in the last 30 s \(queue prefix "test-health-\d+"\)\n$/);

  worker = spawnWorker({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs });
  const pid = worker.child.pid!;
  const alive = await waitFor('the worker to report healthy', async () => {
    const result = await health(inject('redisUrl'));
    return result.code === 0 ? result : undefined;
  });
  expect(alive.stdout).toMatch(new RegExp(`^worker on .+ alive \\(pid ${pid}, heartbeat \\d+ s ago\\)\\n$`));

  worker.child.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
  expect((await health(inject('redisUrl'))).code).toBe(1);
});

it('fails, saying so, when Redis does not answer', async () => {
  const result = await health(`redis://127.0.0.1:${await freePort()}`);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^digits health: Redis at 127\.0\.0\.1:\d+ does not answer: /);
});
