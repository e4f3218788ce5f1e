// Load test of POST /v1/predict with autocannon, against `digits serve` and, in the
// same run on the same machine, a minimal Python server around the PyTorch reference
// model (bench/pytorch_server.py). Payloads: one 28×28 PNG per request (raw
// image/png body), and batches of 32 PNGs as JSON {"instances": [{"image": base64}]}.
// Both servers get identical bytes; each configuration runs digits then PyTorch
// back to back, so background load hits both alike. Results: bench/results/predict-load.json.
//
//   npx tsx bench/predict-load.ts   (BENCH_DURATION=seconds per run, default 5; BENCH_CONCURRENCIES=1,8,32,64;
//                                    the digits server inherits the environment, e.g. BATCH_WAIT_MS, WASM_THREADS)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readIdxImages } from '../src/data/idx.ts';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { FileSystemRegistry } from '../src/registry/filesystem.ts';
import { seedNetOutput } from '../test/helpers/serving.ts';

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
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCIES ?? '1,8,32,64').split(',').map(Number);
const BATCH = 32;
const MNIST_TEST_IMAGES = join(process.env.MNIST_DIR ?? join(ROOT, '..', 'shared', 'data', 'mnist'), 't10k-images-idx3-ubyte.gz');

/** Real MNIST test digits when the files are here (else a drawn stroke), as 28×28 PNGs. */
async function samplePngs(count: number): Promise<Buffer[]> {
  const pixels = existsSync(MNIST_TEST_IMAGES)
    ? (await readIdxImages(MNIST_TEST_IMAGES)).pixels
    : Uint8Array.from({ length: count * 784 }, (_, i) => ((i % 28) - 12) ** 2 < 9 ? 255 : 0);
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp(Buffer.from(pixels.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer(),
    ),
  );
}

function startProcess(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (code !== null && code !== 0) console.error(`${command} exited with ${code ?? signal}`);
  });
  return child;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A 200 for the payload, checked before timing it. */
async function predictOnce(url: string, payload: Payload): Promise<boolean> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': payload.contentType }, body: new Uint8Array(Buffer.from(payload.body)) });
  return response.ok && ((await response.json()) as { predictions: unknown[] }).predictions.length === payload.images;
}

interface RunResult {
  server: string;
  payload: string;
  connections: number;
  requestsPerSecond: number;
  imagesPerSecond: number;
  latencyMs: { p50: number; p99: number; mean: number };
  errors: number;
  non2xx: number;
}

interface Payload {
  name: string;
  contentType: string;
  body: string | Buffer;
  images: number;
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const pngs = await samplePngs(BATCH);
  const payloads: Payload[] = [
    { name: 'single PNG', contentType: 'image/png', body: pngs[0]!, images: 1 },
    {
      name: `batch of ${BATCH} PNGs (JSON base64)`,
      contentType: 'application/json',
      body: JSON.stringify({ instances: pngs.map((png) => ({ image: png.toString('base64') })) }),
      images: BATCH,
    },
  ];

  const redis = await startRedisServer();
  const modelDir = join(await mkdtemp(join(os.tmpdir(), 'bench-models-')), 'models');
  await new FileSystemRegistry(modelDir).publish(await seedNetOutput(1));
  const [digitsPort, torchPort] = [await freePort(), await freePort()];
  const servers = {
    digits: {
      url: `http://127.0.0.1:${digitsPort}/v1/predict`,
      process: startProcess(process.execPath, [join(ROOT, 'bin', 'digits.mjs'), 'serve'], {
        PORT: String(digitsPort),
        HOST: '127.0.0.1',
        MODEL_DIR: modelDir,
        REDIS_URL: redis.url,
        LOG_LEVEL: 'warn', // per-request info logs are for debugging, not for load
        WASM_THREADS: '1', // one compute thread each (PyTorch too): on 2 cores the load generator needs the other
      }),
    },
    pytorch: {
      url: `http://127.0.0.1:${torchPort}/v1/predict`,
      process: startProcess('/usr/bin/python3', [join(ROOT, 'bench', 'pytorch_server.py'), '--port', String(torchPort), '--threads', '1'], {}),
    },
  };
  try {
    for (const [name, server] of Object.entries(servers)) {
      await waitUntil(`${name} to serve predictions`, () => predictOnce(server.url, payloads[0]!));
    }
    const results: RunResult[] = [];
    for (const payload of payloads) {
      for (const connections of CONCURRENCIES) {
        for (const [name, server] of Object.entries(servers)) {
          if (!(await predictOnce(server.url, payload))) throw new Error(`${name} does not answer the ${payload.name} payload`);
          const options = { url: server.url, connections, method: 'POST' as const, headers: { 'content-type': payload.contentType }, body: payload.body };
          await autocannon({ ...options, duration: 1 }); // warm-up
          const run = await autocannon({ ...options, duration: DURATION_S });
          const result: RunResult = {
            server: name,
            payload: payload.name,
            connections,
            requestsPerSecond: Math.round(run.requests.average),
            imagesPerSecond: Math.round(run.requests.average * payload.images),
            latencyMs: { p50: run.latency.p50, p99: run.latency.p99, mean: Math.round(run.latency.average * 100) / 100 },
            errors: run.errors + run.timeouts,
            non2xx: run.non2xx,
          };
          results.push(result);
          console.log(JSON.stringify(result));
        }
      }
    }

    const comparisons = results
      .filter((r) => r.server === 'digits')
      .map((digits) => {
        const torch = results.find((r) => r.server === 'pytorch' && r.payload === digits.payload && r.connections === digits.connections)!;
        const speedup = Math.round((digits.requestsPerSecond / torch.requestsPerSecond) * 100) / 100;
        return { payload: digits.payload, connections: digits.connections, speedup, digitsP99Ms: digits.latencyMs.p99, meetsTarget: speedup >= 3 && digits.latencyMs.p99 < 20 };
      });
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100), node: process.version },
      settings: {
        durationSeconds: DURATION_S,
        warmupSeconds: 1,
        concurrencies: CONCURRENCIES,
        batch: BATCH,
        digits: 'digits serve, LOG_LEVEL=warn, WASM_THREADS=1, other settings default (BATCH_WAIT_MS=0, MAX_BATCH=64)',
        pytorch: 'bench/pytorch_server.py: ThreadingHTTPServer, torch.set_num_threads(1) (faster than 2 here), Pillow decode, one forward per request',
      },
      target: 'digits ≥ 3× PyTorch throughput with p99 < 20 ms',
      results,
      comparisons,
    };
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(join(ROOT, 'bench', 'results', 'predict-load.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.table(comparisons);
  } finally {
    for (const server of Object.values(servers)) server.process.kill('SIGTERM');
    await redis.stop();
  }
}

await main();
// The tfjs wasm engine (imported for the model fixture) keeps worker threads alive.
process.exit(0);
