// `digits up` with REDIS_URL unset: private redis-server + worker + API. A job
// runs to a published model; SIGTERM stops all three; Redis's AOF keeps the
// job across a restart; SIGKILL takes the redis-server and the worker down too.
//
// Each step waits as long as a loaded machine needs. This file used to fail about one
// run in two on the shared 2-core machine: three Node processes compile the app through
// tsx and start tfjs, then a job trains, twice over, inside vitest's 120 s per-test
// limit with 60 s per wait; under a load of ~24 the passing run alone took 66 s.
// A failed wait now prints what `digits up` logged.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { freePort } from '../src/lib/redis-server.ts';
import { getJson, makeDirs, postJson, removeTempDirs, REPO_ROOT, waitFor, writeTinyMnist, type TestDirs } from './helpers/jobs.ts';

interface UpProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  exited: Promise<number | string>;
  output(): string;
}

let dirs: TestDirs;
const running: UpProcess[] = [];

beforeAll(async () => {
  dirs = await makeDirs(await writeTinyMnist(256, 64));
});

/** Generous: on a loaded 2-core machine one start (three processes compiling through tsx) can take a minute. */
const STEP_MS = 240_000;

afterEach(async () => {
  for (const up of running.splice(0)) {
    if (up.child.exitCode === null && up.child.signalCode === null) {
      // The redis-server dies with `up` (setpriv --pdeathsig), the worker when its IPC channel closes.
      process.kill(-up.child.pid!, 'SIGKILL');
      await up.exited;
    }
  }
});

afterAll(removeTempDirs);

function startUp(port: number): UpProcess {
  const { REDIS_URL: _unset, ...env } = process.env;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'up'], {
    cwd: REPO_ROOT,
    env: {
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dirs.dataDir,
      MODEL_DIR: dirs.modelDir,
      MNIST_DIR: dirs.mnistDir,
      QUEUE_PREFIX: 'test-up',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so the test can send a terminal's Ctrl-C (SIGINT to the group).
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const up = { child, exited, output: () => output };
  running.push(up);
  return up;
}

/** waitFor, with `up`'s log in the error when it times out (why it was slow or stuck). */
async function waitForUp<T>(up: UpProcess, what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  try {
    return await waitFor(what, check, STEP_MS);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- digits up output ---\n${up.output().slice(-4000)}`, { cause: error });
  }
}

/** The "digits is up" log line: the API's URL and the children's pids. */
async function upLine(up: UpProcess) {
  return waitForUp(up, '"digits is up" in the log', async () => {
    const line = up.output().split('\n').find((l) => l.includes('"digits is up"'));
    return line ? (JSON.parse(line) as { url: string; workerPid: number; redisPid: number }) : undefined;
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An orphan that exited stays a zombie until PID 1 reaps it (not every init does): that is not running.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return existsSync(`/proc/${pid}`) || process.platform !== 'linux';
  }
};

it('runs a job to a published model, stops all three processes on Ctrl-C or SIGTERM, and keeps jobs across a restart', async () => {
  const port = await freePort();
  const up = startUp(port);
  const { url, workerPid, redisPid } = await upLine(up);
  expect(url).toBe(`http://127.0.0.1:${port}`);
  expect(alive(workerPid) && alive(redisPid)).toBe(true);

  const { status, body } = await postJson(`${url}/v1/jobs`, { epochs: 1, batchSize: 64 });
  expect(status).toBe(202);
  const done = await waitForUp(up, 'the job to complete', async () => {
    const job = (await getJson(`${url}/v1/jobs/${body.id}`)).body;
    return job.state === 'completed' ? job : undefined;
  });
  const models = (await getJson(`${url}/v1/models`)).body.models as { version: string; jobId: string }[];
  expect(models.find((m) => m.version === done.modelVersion)).toMatchObject({ jobId: body.id });

  // Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
  process.kill(-up.child.pid!, 'SIGINT');
  expect(await up.exited).toBe(0);
  expect(alive(workerPid)).toBe(false);
  expect(alive(redisPid)).toBe(false);
  // Redis persisted to an append-only file under DATA_DIR/redis.
  expect(existsSync(join(dirs.dataDir, 'redis'))).toBe(true);
  expect(readdirSync(join(dirs.dataDir, 'redis')).some((name) => name.startsWith('appendonly'))).toBe(true);

  const again = startUp(port);
  const restarted = await upLine(again);
  expect((await getJson(`${restarted.url}/v1/jobs/${body.id}`)).body).toMatchObject({ state: 'completed', modelVersion: done.modelVersion });
  again.child.kill('SIGTERM');
  expect(await again.exited).toBe(0);
}, 4 * STEP_MS);

it('SIGKILLed, it leaves no redis-server or worker behind', async () => {
  const up = startUp(await freePort());
  const { workerPid, redisPid } = await upLine(up);
  expect(alive(workerPid) && alive(redisPid)).toBe(true);
  // Only `up` itself: it cannot stop anything, and its children are in their own process groups.
  up.child.kill('SIGKILL');
  expect(await up.exited).toBe('SIGKILL');
  await waitForUp(up, 'the redis-server to exit', async () => !alive(redisPid));
  await waitForUp(up, 'the worker to exit', async () => !alive(workerPid));
}, 2 * STEP_MS);
