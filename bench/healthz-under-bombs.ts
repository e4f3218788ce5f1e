// How quickly /healthz answers while 8 clients keep sending the most expensive
// image requests: issue 9's finding was 4.9 s. Runs `digits serve` from this
// checkout, and optionally from another checkout (BENCH_BEFORE_ROOT, e.g. a
// worktree of the commit before the decode budget), with the same model and the
// same payloads, alternating run by run:
//   idle          — no load, the baseline
//   max-budget    — each request one 4800×4800 PNG (23.04 M pixels, the most one
//                   request may decode under the default PREDICT_MAX_REQUEST_PIXELS), ?preprocess=mnist
//   issue-payload — each request 17 such PNGs in one JSON body (under 1 MB), ?preprocess=mnist:
//                   decoded in full before; refused (413) from the header now
// /healthz is probed sequentially (one request, 20 ms pause, next) for the whole run;
// min/p50/p90/p99/max are reported. Results: bench/results/healthz-under-bombs.json.
//
//   nice -n 10 npx tsx bench/healthz-under-bombs.ts   (BENCH_DURATION=seconds per scenario, default 10;
//                                                    BENCH_ROUNDS, default 3; BENCH_BEFORE_ROOT=/path/to/other/checkout)
import { spawn, type ChildProcess } from 'node:child_process';
import { execSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Agent, request } from 'node:http';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { seedNetOutput } from '../test/helpers/serving.ts';
import { png } from '../test/helpers/png.ts';
import { loadAverage } from './machine.ts';

const ROOT = join(import.meta.dirname, '..');
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CLIENTS = 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIDE = 4800;

/** A blank (white) gray SIDE×SIDE PNG: ~23 KB that inflate to 23 M pixels. */
function blankPng(): Buffer {
  const rows = Buffer.alloc((SIDE + 1) * SIDE, 255);
  for (let y = 0; y < SIDE; y++) rows[y * (SIDE + 1)] = 0; // filter byte "none"
  return png(SIDE, SIDE, { idat: deflateSync(rows, { level: 9 }) });
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP request; resolves with status and milliseconds (never rejects: errors are status 0). */
function call(url: string, method: string, body?: Buffer): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { method, agent, headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (x: number) => Math.round(x * 10) / 10;
const load = loadAverage;

async function scenario(base: string, body: Buffer | undefined) {
  let running = true;
  const statuses: Record<string, number> = {};
  const clients = body
    ? Array.from({ length: CLIENTS }, async () => {
        while (running) {
          const { status } = await call(`${base}/v1/predict?preprocess=mnist`, 'POST', body);
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      })
    : [];
  const latencies: number[] = [];
  const deadline = performance.now() + DURATION_S * 1000;
  await new Promise((resolve) => setTimeout(resolve, 500)); // let the load start
  while (performance.now() < deadline) {
    const { status, ms } = await call(`${base}/healthz`, 'GET');
    if (status !== 200) throw new Error(`/healthz answered ${status}`);
    latencies.push(ms);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  running = false;
  await Promise.all(clients);
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    healthzMs: { samples: sorted.length, min: round(sorted[0]!), p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1)!) },
    predictStatuses: statuses,
  };
}

function startServer(root: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(root, 'bin', 'digits.mjs'), 'serve'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function waitUntilUp(base: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const ready = await fetch(`${base}/readyz`).then((r) => r.json() as Promise<{ model: unknown }>).catch(() => undefined);
    if (ready?.model) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`${base} did not come up with a model`);
}

async function main(): Promise<void> {
  const png = blankPng();
  const maxBudget = Buffer.from(JSON.stringify({ image: png.toString('base64') }));
  const issuePayload = Buffer.from(JSON.stringify({ instances: Array.from({ length: 17 }, () => ({ image: png.toString('base64') })) }));
  const redis = await startRedisServer();
  const modelDir = join(await mkdtemp(join(os.tmpdir(), 'bench-models-')), 'models');
  await new FileSystemRegistry(modelDir).publish(await seedNetOutput(1));

  const checkouts: [string, string][] = [['after', ROOT]];
  if (process.env.BENCH_BEFORE_ROOT) checkouts.unshift(['before', process.env.BENCH_BEFORE_ROOT]);
  // Both servers run side by side (the idle one costs nothing) and the runs alternate,
  // round after round, so that the shared machine's changing load hits both alike.
  const servers: { label: string; root: string; base: string; commit: string; process: ChildProcess }[] = [];
  const runs: ({ round: number; checkout: string; commit: string; scenario: string; clients: number; loadAverage: { start: number[]; end: number[] } } & Awaited<ReturnType<typeof scenario>>)[] = [];
  try {
    for (const [label, root] of checkouts) {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const commit = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
      servers.push({ label, root, base, commit, process: startServer(root, { PORT: String(port), HOST: '127.0.0.1', MODEL_DIR: modelDir, REDIS_URL: redis.url, LOG_LEVEL: 'warn' }) });
    }
    for (const server of servers) await waitUntilUp(server.base);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, body] of [['idle', undefined], ['max-budget', maxBudget], ['issue-payload', issuePayload]] as const) {
        for (const server of servers) {
          const loadAtStart = load();
          const result = await scenario(server.base, body);
          const run = { round, checkout: server.label, commit: server.commit, scenario: name, clients: body ? CLIENTS : 0, ...result, loadAverage: { start: loadAtStart, end: load() } };
          runs.push(run);
          console.log(JSON.stringify(run));
        }
      }
    }
  } finally {
    for (const server of servers) {
      server.process.kill('SIGTERM');
      await new Promise((resolve) => server.process.once('exit', resolve));
    }
    await redis.stop();
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const summary = servers.flatMap((server) =>
    ['idle', 'max-budget', 'issue-payload'].map((name) => {
      const mine = runs.filter((run) => run.checkout === server.label && run.scenario === name);
      const p99s = mine.map((run) => run.healthzMs.p99);
      return { checkout: server.label, commit: server.commit, scenario: name, rounds: mine.length, healthzP99Ms: { min: Math.min(...p99s), median: median(p99s), max: Math.max(...p99s) }, healthzP50MsMedian: median(mine.map((run) => run.healthzMs.p50)) };
    }),
  );
  console.table(summary.map((row) => ({ ...row, healthzP99Ms: JSON.stringify(row.healthzP99Ms) })));
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, note: 'shared machine: other jobs ran at the same time; see loadAverage per run' },
    settings: {
      durationSecondsPerScenario: DURATION_S,
      rounds: ROUNDS,
      clients: CLIENTS,
      image: `${SIDE}×${SIDE} blank gray PNG, ${png.length} bytes, sent base64 in JSON with ?preprocess=mnist`,
      bodies: { 'max-budget': maxBudget.length, 'issue-payload': issuePayload.length },
      server: 'digits serve, LOG_LEVEL=warn, everything else default',
      probe: 'sequential GET /healthz, 20 ms pause between probes, over a keep-alive connection',
    },
    summary,
    runs,
  };
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results', 'healthz-under-bombs.json'), `${JSON.stringify(report, null, 2)}\n`);
}

await main();
// The tfjs wasm engine (imported for the model fixture) keeps worker threads alive.
process.exit(0);
