// The API's memory (issue 14: RSS ≤ 150 MB idle, back within 10 % of idle after a load run).
// Starts `digits serve` as npm start does, with two models in its registry, and reads its
// RSS, broken down by mapping (/proc/PID/smaps), at: start-up (nothing predicted yet),
// after one prediction per model, right after a load run (32-PNG JSON requests and single
// PNGs at 64 connections), and at intervals after it. Repeats the whole thing RUNS times
// (a fresh server each) and reports min / median / max per point.
//
//   npx tsx bench/api-rss.ts [--runs 3] [--load-seconds 8] [--tag NAME]
//   The server inherits the environment (e.g. INFERENCE_THREADS; LD_PRELOAD and MALLOC_CONF for jemalloc).
// Results: bench/results/api-rss[-TAG].json.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { seedNetOutput } from '../test/helpers/serving.ts';
import { loadAverage, machineInfo } from './machine.ts';
import { samplePngs } from './mnist-pngs.ts';

type Autocannon = (options: { url: string; connections: number; duration: number; method: 'POST'; headers: Record<string, string>; body: string | Buffer }) => Promise<{ requests: { average: number }; non2xx: number; errors: number }>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const ROOT = join(import.meta.dirname, '..');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'load-seconds': { type: 'string', default: '8' }, tag: { type: 'string' } } });
const RUNS = Number(args.runs);
const LOAD_SECONDS = Number(args['load-seconds']);
const AFTER_LOAD_S = [0, 5, 15, 30, 60];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS in MB by kind of mapping: the node binary, other files, the malloc heap, other anonymous memory (V8 heaps, wasm memories, thread stacks). */
function memoryMb(pid: number): Record<string, number> {
  const kb: Record<string, number> = { rss: 0, nodeBinary: 0, otherFiles: 0, mallocHeap: 0, anonymous: 0 };
  let kind = 'anonymous';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const path = header[1]!;
      kind = path === '[heap]' ? 'mallocHeap' : path.startsWith('/') && path.endsWith('/node') ? 'nodeBinary' : path.startsWith('/') ? 'otherFiles' : 'anonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      kb[kind]! += Number(rss[1]);
      kb.rss! += Number(rss[1]);
    }
  }
  const threads = Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return { ...Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, Math.round(v / 1024)])), threads };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function predict(url: string, contentType: string, body: string | Buffer): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
}

async function oneRun(modelDir: string, redisUrl: string, batchBody: string, single: Buffer): Promise<Record<string, Record<string, number>>> {
  const port = await freePort();
  const server: ChildProcess = spawn(process.execPath, ['--max-semi-space-size=2', join(ROOT, 'bin', 'digits.mjs'), 'serve'] /* as npm start and the Dockerfiles run it */, {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', MODEL_DIR: modelDir, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const points: Record<string, Record<string, number>> = {};
  try {
    for (let i = 0; ; i++) {
      if ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok) break;
      if (i > 600) throw new Error('digits serve did not become ready');
      await sleep(100);
    }
    await sleep(3000);
    points.started = memoryMb(server.pid!);
    for (const query of ['', '?model=compact']) await predict(`${base}/v1/predict${query}`, 'image/png', single);
    await sleep(3000);
    points.afterOnePrediction = memoryMb(server.pid!);
    for (const [contentType, body] of [['application/json', batchBody], ['image/png', single]] as const) {
      const run = await autocannon({ url: `${base}/v1/predict`, connections: 64, duration: LOAD_SECONDS, method: 'POST', headers: { 'content-type': contentType }, body });
      if (run.non2xx || run.errors) throw new Error(`load run: ${run.non2xx} non-2xx, ${run.errors} errors`);
    }
    let waited = 0;
    for (const seconds of AFTER_LOAD_S) {
      await sleep((seconds - waited) * 1000);
      waited = seconds;
      points[`${seconds}sAfterLoad`] = memoryMb(server.pid!);
    }
    return points;
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const redis = await startRedisServer();
  const dir = await mkdtemp(join(os.tmpdir(), 'api-rss-'));
  try {
    const modelDir = join(dir, 'models');
    const registry = new FileSystemRegistry(modelDir);
    await registry.publish(await seedNetOutput(1));
    await registry.publish(await seedNetOutput(2, { model: 'compact' }, 'compact'));
    const images = await samplePngs(32);
    const batchBody = JSON.stringify({ instances: images.map((png) => ({ image: png.toString('base64') })) });
    const runs: Record<string, Record<string, number>>[] = [];
    for (let run = 0; run < RUNS; run++) {
      const points = await oneRun(modelDir, redis.url, batchBody, images[0]!);
      console.log(JSON.stringify(Object.fromEntries(Object.entries(points).map(([k, v]) => [k, v.rss]))));
      runs.push(points);
    }
    const names = Object.keys(runs[0]!);
    const summary = Object.fromEntries(
      names.map((point) => {
        const rss = runs.map((r) => r[point]!.rss!);
        return [point, { rssMb: { min: Math.min(...rss), median: median(rss), max: Math.max(...rss) }, breakdownMedianMb: Object.fromEntries(Object.keys(runs[0]![point]!).map((k) => [k, median(runs.map((r) => r[point]![k]!))])) }];
      }),
    );
    const idle = summary.afterOnePrediction!.rssMb.median;
    const report = {
      benchmark: 'API RSS (digits serve, two models) idle and after a load run, by mapping',
      command: `npx tsx bench/api-rss.ts --runs ${RUNS} --load-seconds ${LOAD_SECONDS}${args.tag ? ` --tag ${args.tag}` : ''}`,
      date: new Date().toISOString(),
      machine: machineInfo(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAverage(),
      environment: Object.fromEntries(['INFERENCE_THREADS', 'MAX_BATCH', 'NODE_OPTIONS', 'LD_PRELOAD', 'MALLOC_CONF'].map((k) => [k, process.env[k] ?? null])),
      load: `${LOAD_SECONDS} s of 32-PNG JSON requests, then ${LOAD_SECONDS} s of single PNGs, 64 connections each`,
      targets: { idleMb: 150, afterLoadWithinPercentOfIdle: 10 },
      idleMb: idle,
      afterLoadPercentOfIdle: Object.fromEntries(AFTER_LOAD_S.map((s) => [`${s}s`, Math.round((summary[`${s}sAfterLoad`]!.rssMb.median / idle - 1) * 1000) / 10])),
      summary,
      runs,
    };
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = join(ROOT, 'bench', 'results', `api-rss${args.tag ? `-${args.tag}` : ''}.json`);
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(JSON.stringify({ idle, afterLoad: report.afterLoadPercentOfIdle }), '→', file);
  } finally {
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
// The tfjs wasm engine (imported for the model fixture) keeps worker threads alive.
process.exit(0);
