// Load test of POST /v1/predict with autocannon: `digits serve` beside two PyTorch
// anchors on the same machine in the same run, the FastAPI + uvicorn server a Python
// team would pick (../shared/reference/pytorch_fastapi_server.py, 2 workers) and the
// minimal http.server one (bench/pytorch_server.py). Payloads: one 28×28 PNG per
// request (raw image/png body), and 32 PNGs as JSON {"instances": [{"image": base64}]};
// all servers get identical bytes. Every server is warmed up first; then each row
// runs ROUNDS rounds, and in each round every server in turn (the order rotates per
// round), so background load on this shared machine hits all of them alike. The
// summary is the median (and min / max) over rounds. The compact architecture is
// served by the same digits process under the model name "compact" and gets its own
// rows. The digits server's RSS is read idle (after start-up), right after the load
// and after it settles. Results: bench/results/predict-load[-LABEL].json.
//
//   npx tsx bench/predict-load.ts
//     BENCH_DURATION   seconds per timed run (default 4)      BENCH_ROUNDS  rounds per row (default 3)
//     BENCH_ROWS       e.g. "single:8,single:64,batch:8,batch:64" (default), "compact-" prefix for compact rows
//     BENCH_ANCHORS    fastapi,http (default both)            BENCH_LABEL   suffix of the result file
//   The digits server inherits the environment (e.g. INFERENCE_THREADS, MAX_BATCH).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { seedNetOutput } from '../test/helpers/serving.ts';
import { loadAverage } from './machine.ts';
import { samplePngs } from './mnist-pngs.ts';

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  method: 'POST';
  headers: Record<string, string>;
  body: string | Buffer;
}) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const ROOT = join(import.meta.dirname, '..');
const DURATION_S = Number(process.env.BENCH_DURATION ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROWS = (process.env.BENCH_ROWS ?? 'single:8,single:64,batch:8,batch:64,compact-single:64,compact-batch:64').split(',');
const ANCHORS = (process.env.BENCH_ANCHORS ?? 'fastapi,http').split(',').filter(Boolean);
const LABEL = process.env.BENCH_LABEL;
const BATCH = 32;
const FASTAPI_DIR = join(ROOT, '..', 'shared', 'reference');

/** Started in its own process group, so that uvicorn's worker processes stop with it. */
function startProcess(command: string, args: string[], env: Record<string, string>, stderr: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  // The anchors' stderr is ignored: http.server prints a traceback for every connection autocannon closes mid-reply.
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', stderr], detached: true });
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) console.error(`${command} exited with ${code ?? signal}`);
  });
  return child;
}

function stopProcess(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    // already gone
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident set size of a process in MB (VmRSS). */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(match![1]) / 1024);
}

/**
 * CPU seconds (user + system) used so far by every process in a process group (the
 * server and, for uvicorn, its workers). Unlike images/s this barely depends on what
 * else the shared machine runs: it is what one image costs the server.
 */
function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command: state ppid pgrp … utime (14th field) stime (15th).
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / 100; // USER_HZ
}

/** Waits (at most 15 s) until a server's process group uses under 5 % of a core over half a second. */
async function drained(pgid: number): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const before = groupCpuSeconds(pgid);
    await sleep(500);
    if (groupCpuSeconds(pgid) - before < 0.025) return;
  }
}

interface Payload {
  name: string;
  contentType: string;
  body: string | Buffer;
  images: number;
}

/** A 200 with one prediction per image, checked before timing. */
async function predictOnce(url: string, payload: Payload): Promise<boolean> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': payload.contentType }, body: new Uint8Array(Buffer.from(payload.body)) });
  return response.ok && ((await response.json()) as { predictions: unknown[] }).predictions.length === payload.images;
}

interface Run {
  round: number;
  imagesPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  load1: number;
  /** Server CPU time per 1,000 images (all its processes and threads). */
  cpuMsPer1000Images: number;
}

const loadNow = () => Math.round(os.loadavg()[0]! * 100) / 100;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const spread = (values: number[]) =>
  values.length === 0 ? { min: null, median: null, max: null } : { min: Math.min(...values), median: median(values), max: Math.max(...values) };

async function main(): Promise<void> {
  const loadAtStart = loadAverage();
  const pngs = await samplePngs(BATCH);
  const payloads: Record<'single' | 'batch', Payload> = {
    single: { name: 'single PNG', contentType: 'image/png', body: pngs[0]!, images: 1 },
    batch: {
      name: `${BATCH} PNGs per request (JSON base64)`,
      contentType: 'application/json',
      body: JSON.stringify({ instances: pngs.map((png) => ({ image: png.toString('base64') })) }),
      images: BATCH,
    },
  };

  const redis = await startRedisServer();
  const modelDir = join(await mkdtemp(join(os.tmpdir(), 'bench-models-')), 'models');
  const registry = new FileSystemRegistry(modelDir);
  await registry.publish(await seedNetOutput(1));
  await registry.publish(await seedNetOutput(2, { model: 'compact' }, 'compact'));
  const ports = { digits: await freePort(), fastapi: await freePort(), http: await freePort() };
  const digitsProcess = startProcess(process.execPath, ['--max-semi-space-size=2', join(ROOT, 'bin', 'digits.mjs'), 'serve'] /* as npm start and the Dockerfiles run it */, {
    PORT: String(ports.digits),
    HOST: '127.0.0.1',
    MODEL_DIR: modelDir,
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn', // per-request info logs are for debugging, not for load
  });
  const servers: Record<string, { url: string; process: ChildProcess }> = {
    digits: { url: `http://127.0.0.1:${ports.digits}/v1/predict`, process: digitsProcess },
  };
  if (ANCHORS.includes('fastapi')) {
    servers.fastapi = {
      url: `http://127.0.0.1:${ports.fastapi}/v1/predict`,
      process: startProcess(
        '/usr/bin/python3',
        ['-m', 'uvicorn', '--app-dir', FASTAPI_DIR, 'pytorch_fastapi_server:app', '--host', '127.0.0.1', '--port', String(ports.fastapi), '--workers', '2', '--log-level', 'warning'],
        {},
        'ignore',
      ),
    };
  }
  if (ANCHORS.includes('http')) {
    servers.http = {
      url: `http://127.0.0.1:${ports.http}/v1/predict`,
      process: startProcess('/usr/bin/python3', [join(ROOT, 'bench', 'pytorch_server.py'), '--port', String(ports.http), '--threads', '1'], {}),
    };
  }
  try {
    for (const [name, server] of Object.entries(servers)) {
      await waitUntil(`${name} to serve predictions`, () => predictOnce(server.url, payloads.single));
    }
    await sleep(3000);
    const rssIdleMb = rssMb(digitsProcess.pid!);
    // Warm every server on both payloads before anything is timed (JIT, allocators, worker start-up).
    for (const server of Object.values(servers)) {
      for (const payload of Object.values(payloads)) {
        await autocannon({ url: server.url, connections: 16, method: 'POST', headers: { 'content-type': payload.contentType }, body: payload.body, duration: 3 });
      }
    }

    const rows = [];
    for (const row of ROWS) {
      const [kind, connectionsText] = row.split(':');
      const compact = kind!.startsWith('compact-');
      const payload = payloads[kind!.replace('compact-', '') as 'single' | 'batch'];
      const connections = Number(connectionsText);
      // The compact model has no PyTorch twin: its rows are digits only.
      const names = compact ? ['digits'] : Object.keys(servers);
      const runs: Record<string, Run[]> = Object.fromEntries(names.map((name) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        const order = names.map((_, i) => names[(i + round) % names.length]!);
        for (const name of order) {
          const url = servers[name]!.url + (compact ? '?model=compact' : '');
          if (!(await predictOnce(url, payload))) throw new Error(`${name} does not answer the ${payload.name} payload`);
          const options = { url, connections, method: 'POST' as const, headers: { 'content-type': payload.contentType }, body: payload.body };
          await autocannon({ ...options, duration: 1 }); // re-warm at this concurrency
          const cpuBefore = groupCpuSeconds(servers[name]!.process.pid!);
          const run = await autocannon({ ...options, duration: DURATION_S });
          const cpuSeconds = groupCpuSeconds(servers[name]!.process.pid!) - cpuBefore;
          // A server still working off the requests queued when the run stopped (uvicorn does) would take CPU from the next server's run.
          await drained(servers[name]!.process.pid!);
          const images = run.requests.average * DURATION_S * payload.images;
          const result: Run = {
            round,
            imagesPerSecond: Math.round(run.requests.average * payload.images),
            p50: run.latency.p50,
            p99: run.latency.p99,
            errors: run.errors + run.timeouts,
            non2xx: run.non2xx,
            load1: loadNow(),
            cpuMsPer1000Images: images > 0 ? Math.round((cpuSeconds * 1e6) / images) : -1,
          };
          runs[name]!.push(result);
          console.log(JSON.stringify({ row, server: name, ...result }));
        }
      }
      const summary = Object.fromEntries(
        Object.entries(runs).map(([name, list]) => [
          name,
          {
            imagesPerSecond: spread(list.map((r) => r.imagesPerSecond)),
            p99Ms: spread(list.map((r) => r.p99)),
            p50Ms: spread(list.map((r) => r.p50)),
            cpuMsPer1000Images: spread(list.map((r) => r.cpuMsPer1000Images).filter((v) => v >= 0)),
          },
        ]),
      );
      const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100);
      const anchors = Object.keys(summary).filter((name) => name !== 'digits');
      // Throughput ratio (ours ÷ anchor), and CPU cost ratio (anchor's CPU per image ÷ ours): > 1 is better for us in both.
      const ratios = Object.fromEntries(anchors.map((name) => [name, ratio(summary.digits!.imagesPerSecond.median, summary[name]!.imagesPerSecond.median)]));
      const cpuRatios = Object.fromEntries(anchors.map((name) => [name, ratio(summary[name]!.cpuMsPer1000Images.median, summary.digits!.cpuMsPer1000Images.median)]));
      rows.push({ row, model: compact ? 'compact (7,568 params)' : 'seed (14,320 params)', payload: payload.name, connections, summary, digitsSpeedup: ratios, digitsCpuEfficiency: cpuRatios, runs });
      console.log(
        JSON.stringify({ row, medians: Object.fromEntries(Object.entries(summary).map(([n, s]) => [n, [s.imagesPerSecond.median, s.p99Ms.median, s.cpuMsPer1000Images.median]])), ratios, cpuRatios }),
      );
    }
    const rssAfterLoadMb = rssMb(digitsProcess.pid!);
    await sleep(15_000);
    const rssSettledMb = rssMb(digitsProcess.pid!);

    const report = {
      date: new Date().toISOString(),
      label: LABEL ?? null,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadAverage(),
        node: process.version,
        note: 'shared by six engineers; load1 is recorded after every run',
      },
      settings: {
        durationSeconds: DURATION_S,
        rounds: ROUNDS,
        warmup: '3 s per payload per server at 16 connections, then 1 s before every timed run; after each timed run, a wait until that server is idle (under 5 % of a core)',
        batch: BATCH,
        digits: `digits serve, LOG_LEVEL=warn; environment: ${['INFERENCE_THREADS', 'MAX_BATCH', 'BATCH_WAIT_MS', 'WASM_THREADS'].map((k) => `${k}=${process.env[k] ?? '(default)'}`).join(' ')}`,
        fastapi: 'shared/reference/pytorch_fastapi_server.py under uvicorn --workers 2, torch.set_num_threads(1) per worker',
        http: 'bench/pytorch_server.py: ThreadingHTTPServer, torch.set_num_threads(1), one forward per request',
      },
      digitsRssMb: { idle: rssIdleMb, rightAfterLoad: rssAfterLoadMb, fifteenSecondsAfterLoad: rssSettledMb },
      rows,
    };
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = join(ROOT, 'bench', 'results', `predict-load${LABEL ? `-${LABEL}` : ''}.json`);
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(JSON.stringify(report.digitsRssMb), '→', file);
  } finally {
    for (const server of Object.values(servers)) stopProcess(server.process);
    await redis.stop();
  }
}

await main();
// The tfjs wasm engine (imported for the model fixture) keeps worker threads alive.
process.exit(0);
