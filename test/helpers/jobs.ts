// Shared pieces of the jobs, worker and `digits up` tests: a tiny generated
// MNIST (so a training job takes seconds), the API over real HTTP, worker
// processes, SSE reading and polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { writeIdx } from '../../src/data/idx.ts';
import { buildApp } from '../../src/api/app.ts';
import { createApiServices } from '../../src/api/services.ts';
import { loadConfig } from '../../src/lib/config.ts';
import { createLogger } from '../../src/lib/logger.ts';
import type { JobsService } from '../../src/queue/jobs-service.ts';
import type { FileSystemRegistry } from '../../src/registry/filesystem.ts';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');

const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes every directory writeTinyMnist and makeDirs created (call in afterAll). */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** A temp directory with MNIST-shaped IDX files: `train` and `test` images with a learnable brightness cue. */
export async function writeTinyMnist(train: number, test: number): Promise<string> {
  const dir = await tempDir('jobs-mnist-');
  const split = async (prefix: string, count: number) => {
    const labels = new Uint8Array(count).map((_, i) => (i * 7) % 10);
    const pixels = new Uint8Array(count * 784);
    labels.forEach((label, i) => pixels.fill(25 * label + ((i * 13) % 20), i * 784, i * 784 + 784));
    await writeIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`), { kind: 'images', pixels }, { gzip: true });
    await writeIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`), { kind: 'labels', labels }, { gzip: true });
  };
  await split('train', train);
  await split('t10k', test);
  return dir;
}

export interface TestDirs {
  dataDir: string;
  modelDir: string;
  mnistDir: string;
}

export async function makeDirs(mnistDir: string): Promise<TestDirs> {
  const root = await tempDir('jobs-test-');
  return { dataDir: join(root, 'data'), modelDir: join(root, 'models'), mnistDir };
}

export interface TestApi {
  app: FastifyInstance;
  url: string;
  jobs: JobsService;
  registry: FileSystemRegistry;
  close(): Promise<void>;
}

/** The real app, built as `digits serve` builds it (createApiServices + buildApp), on a free port, on `redisUrl` under `prefix`. */
export async function startTestApi(options: {
  redisUrl: string;
  prefix: string;
  dirs: TestDirs;
  timeoutMs?: number;
  /** More environment for loadConfig (e.g. MODEL_RECHECK_MS). */
  env?: Record<string, string>;
}): Promise<TestApi> {
  const config = loadConfig({
    DATA_DIR: options.dirs.dataDir,
    MODEL_DIR: options.dirs.modelDir,
    LOG_LEVEL: 'silent',
    REDIS_URL: options.redisUrl,
    QUEUE_PREFIX: options.prefix,
    ...options.env,
  });
  const services = await createApiServices(config, { logger: createLogger(config), jobsTimeoutMs: options.timeoutMs });
  const { registry } = services;
  const jobs = services.jobs!;
  const app = await buildApp({ config, ...services });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    jobs,
    registry,
    async close() {
      await app.close();
      await services.close();
    },
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote so far (pino JSON lines and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** `node bin/digits.mjs worker` with the test's Redis, prefix and directories. */
export function spawnWorker(env: { redisUrl: string; prefix: string; dirs: TestDirs; extra?: Record<string, string> }): WorkerProcess {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'digits.mjs'), 'worker'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      REDIS_URL: env.redisUrl,
      QUEUE_PREFIX: env.prefix,
      DATA_DIR: env.dirs.dataDir,
      MODEL_DIR: env.dirs.modelDir,
      MNIST_DIR: env.dirs.mnistDir,
      LOG_LEVEL: 'info',
      ...env.extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => output, exited };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after timeoutMs with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

export async function getJson(url: string): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

export async function postJson(url: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

export interface SseEvent {
  event: string;
  data: any;
}

/** Opens an SSE stream; events are collected as they arrive, `ended` resolves when the server closes it. */
export async function openEvents(url: string): Promise<{ status: number; contentType: string | null; events: SseEvent[]; ended: Promise<void>; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const events: SseEvent[] = [];
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const lines = frame.split('\n').filter((line) => !line.startsWith(':'));
          const event = lines.find((line) => line.startsWith('event: '))?.slice(7);
          const data = lines.find((line) => line.startsWith('data: '))?.slice(6);
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
  })();
  return { status: response.status, contentType: response.headers.get('content-type'), events, ended, close: () => controller.abort() };
}
