// `digits serve` stops promptly on SIGTERM even when Redis went away while it ran
// (BullMQ's close would otherwise wait for replies that never come, until
// SHUTDOWN_TIMEOUT_MS killed the process with "shutdown timed out").
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { REPO_ROOT, waitFor } from './helpers/jobs.ts';

it('exits 0 within seconds of SIGTERM after Redis has gone down', async () => {
  const redis = await startRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'shutdown-test-'));
  const port = await freePort();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'serve'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redis.url, MODEL_DIR: join(dir, 'models'), DATA_DIR: join(dir, 'data'), SHUTDOWN_TIMEOUT_MS: '60000', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the API to listen', async () => (await fetch(`${url}/healthz`)).ok, 60_000);
    expect((await fetch(`${url}/v1/jobs`)).status).toBe(200); // connections to Redis are up
    await redis.stop();
    await waitFor('jobs to answer 503', async () => (await fetch(`${url}/v1/jobs`)).status === 503, 20_000);

    const started = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    // A hang detector, not a speed check: the old behaviour waited the full 60 s.
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(code).toBe(0);
    expect(log).toMatch(/API stopped/);
    expect(log).not.toMatch(/shutdown timed out/);
  } finally {
    child.kill('SIGKILL');
    await redis.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});
