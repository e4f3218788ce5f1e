// `digits health`, the containers' health check (Docker HEALTHCHECK): a worker is
// healthy exactly while a real `digits worker` on this host runs and Redis answers;
// the API while its /healthz answers; without a target, whichever listens on PORT.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { freePort } from '../src/lib/redis-server.ts';
import { makeDirs, removeTempDirs, REPO_ROOT, spawnWorker, startTestApi, waitFor, writeTinyMnist, type TestDirs, type WorkerProcess } from './helpers/jobs.ts';

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

/** `digits health …` → its exit code and output. */
async function health(redisUrl: string, args: string[] = ['worker'], port?: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'health', ...args], {
    cwd: REPO_ROOT,
    timeout: 30_000,
    env: { ...process.env, REDIS_URL: redisUrl, QUEUE_PREFIX: PREFIX, PORT: String(port ?? (await freePort())) },
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

it('checks the API when one listens on PORT (or when asked), failing when none answers', async () => {
  const api = await startTestApi({ redisUrl: inject('redisUrl'), prefix: PREFIX, dirs });
  try {
    const port = Number(new URL(api.url).port);
    for (const args of [[], ['api']]) {
      const result = await health(inject('redisUrl'), args, port);
      expect(result).toMatchObject({ code: 0, stdout: `API on port ${port} alive\n` });
    }
  } finally {
    await api.close();
  }
  const none = await health(inject('redisUrl'), ['api']);
  expect(none.code).toBe(1);
  expect(none.stderr).toMatch(/^digits health: http:\/\/127\.0\.0\.1:\d+\/healthz does not answer: /);
  // Nothing on PORT and no target: the worker is what is checked (and there is none).
  expect((await health(inject('redisUrl'), [])).stderr).toMatch(/no worker heartbeat/);
});

it('fails, saying so, when Redis does not answer', async () => {
  const result = await health(`redis://127.0.0.1:${await freePort()}`);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^digits health: Redis at 127\.0\.0\.1:\d+ does not answer: /);
});
