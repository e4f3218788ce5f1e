// Resident memory of a real training worker: a private redis-server, `digits worker`
// (WASM_THREADS threads), one seed-recipe job on the full MNIST set submitted through
// JobsService as the API would; the worker process's VmRSS (its training thread included)
// sampled from /proc every 100 ms until the job finishes.
//
//   npx tsx bench/worker-rss.ts --data-dir ../shared/data/mnist [--epochs 2] [--threads 2] [--tag NAME]
//
// Writes bench/results/worker-rss[-TAG].json: RSS while training (from epoch 2, i.e. after an
// evaluation has run; with --epochs 1, from the first batch on) and overall, min / median / max.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage } from './machine.ts';
import { createLogger } from '../src/lib/logger.ts';
import { startRedisServer } from '../src/lib/redis-server.ts';
import { JobsService } from '../src/queue/jobs-service.ts';
import { JobRequestSchema } from '../src/queue/schema.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    epochs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    tag: { type: 'string', default: '' },
  },
});

const vmRssMiB = (pid: number): number | undefined => {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
};

const work = await mkdtemp(join(tmpdir(), 'worker-rss-'));
const redis = await startRedisServer();
const prefix = 'worker-rss';
const loadBefore = loadavg();
const worker = spawn(process.execPath, [join(ROOT, 'bin/digits.mjs'), 'worker'], {
  cwd: ROOT,
  env: {
    ...process.env,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    DATA_DIR: join(work, 'data'),
    MODEL_DIR: join(work, 'models'),
    MNIST_DIR: resolve(values['data-dir']!),
    WASM_THREADS: values.threads,
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const jobs = JobsService.connect({ redisUrl: redis.url, prefix, logger: createLogger({ logLevel: 'warn' }) });
const samples: { t: number; rssMiB: number; epoch: number }[] = [];
let epoch = 0;
const start = performance.now();
const timer = setInterval(() => {
  const rss = vmRssMiB(worker.pid!);
  if (rss !== undefined) samples.push({ t: Math.round(performance.now() - start), rssMiB: Math.round(rss), epoch });
}, 100);
let finalState: string | undefined;
try {
  // The connection comes up asynchronously; commands before that are refused, not queued.
  for (let tries = 0; ; tries++) {
    try {
      await jobs.ping();
      break;
    } catch (error) {
      if (tries > 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const { job } = await jobs.create(JobRequestSchema.parse({ recipe: 'seed', epochs: Number(values.epochs), promote: 'never' }));
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const view = await jobs.get(job.id);
    epoch = view.progress?.epoch ?? 0;
    if (['completed', 'failed', 'cancelled'].includes(view.state)) {
      finalState = view.state;
      break;
    }
  }
} finally {
  clearInterval(timer);
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  await jobs.close();
  await redis.stop();
  await rm(work, { recursive: true, force: true });
}
if (finalState !== 'completed') throw new Error(`job ended ${finalState}`);

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s.at(-1), samples: s.length };
};
const result = {
  benchmark: 'resident memory (VmRSS) of `digits worker` running one seed-recipe job on the full MNIST set, wasm engine',
  command: `npx tsx bench/worker-rss.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  threads: Number(values.threads),
  epochs: Number(values.epochs),
  loadAverageBefore: loadBefore.map((l) => Math.round(l * 100) / 100),
  loadAverageAfter: loadAverage(),
  // The allocator the worker ran with (the Docker images preload jemalloc; `npm start` does not).
  environment: Object.fromEntries(['LD_PRELOAD', 'MALLOC_CONF', 'NODE_OPTIONS'].map((name) => [name, process.env[name] ?? null])),
  // From epoch 2 (one epoch: from its first batch on, its evaluation included): the data set
  // is loaded and, from epoch 2, an evaluation (the other peak) has run.
  rssWhileTrainingMiB: summary(samples.filter((s) => s.epoch >= Math.min(2, Number(values.epochs))).map((s) => s.rssMiB)),
  rssOverallMiB: summary(samples.map((s) => s.rssMiB)),
  samples: samples.filter((_, i) => i % 20 === 0),
};
const name = `worker-rss${values.tag ? `-${values.tag}` : ''}.json`;
await writeFileAtomic(join(ROOT, 'bench/results', name), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, samples: undefined }));
