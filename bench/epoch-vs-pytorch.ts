// One full training epoch of the seed recipe (60,000 MNIST images, batch 128), our
// `digits train` against the PyTorch reference (../shared/reference/pytorch_seed_recipe.py),
// measured side by side: the runs alternate, round after round, so drift on a shared
// machine hits both. Both report the same `seconds` (the training loop only, no evaluation).
//
//   npx tsx bench/epoch-vs-pytorch.ts --data-dir ../shared/data/mnist [--rounds 2] [--threads 1,2]
//
// Writes bench/results/epoch-vs-pytorch.json: every run, and per thread count the median
// epoch time and its ratio to PyTorch's median on 2 threads (the reference's own setting).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const REFERENCE = resolve(ROOT, '../shared/reference/pytorch_seed_recipe.py');

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
  },
});
const dataDir = resolve(values['data-dir']);
const threadCounts = values.threads.split(',').map(Number);

interface Run {
  round: number;
  runner: 'pytorch' | 'digits';
  threads: number;
  seconds: number;
  testAccuracy: number;
  engine: string;
}

/** The single JSON line (epoch 1) a runner prints with --json. */
function epochLine(stdout: string): { seconds: number; testAccuracy: number; engine: string } {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON epoch line in output:\n${stdout}`);
  return JSON.parse(line);
}

async function pytorchEpoch(threads: number) {
  const { stdout } = await execFileAsync('/usr/bin/python3', [REFERENCE, '--data-dir', dataDir, '--epochs', '1', '--threads', String(threads)]);
  return epochLine(stdout);
}

async function digitsEpoch(threads: number) {
  const out = await mkdtemp(join(tmpdir(), 'epoch-bench-'));
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [join(ROOT, 'bin/digits.mjs'), 'train', '--data-dir', dataDir, '--epochs', '1', '--engine', 'wasm', '--json', '--out', out],
      { env: { ...process.env, WASM_THREADS: String(threads) }, maxBuffer: 16 * 1024 * 1024 },
    );
    return epochLine(stdout);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const loadBefore = loadavg();
const runs: Run[] = [];
const record = (run: Run) => {
  runs.push(run);
  console.log(JSON.stringify(run));
};
for (let round = 1; round <= Number(values.rounds); round++) {
  record({ round, runner: 'pytorch', threads: 2, ...(await pytorchEpoch(2)) });
  for (const threads of threadCounts) record({ round, runner: 'digits', threads, ...(await digitsEpoch(threads)) });
}

const pytorchMedian = median(runs.filter((r) => r.runner === 'pytorch').map((r) => r.seconds));
const digits = threadCounts.map((threads) => {
  const seconds = median(runs.filter((r) => r.runner === 'digits' && r.threads === threads).map((r) => r.seconds));
  return { threads, medianEpochSeconds: seconds, ratioToPytorch2Threads: Math.round((seconds / pytorchMedian) * 100) / 100 };
});
const result = {
  benchmark: 'one training epoch of the seed recipe, digits (wasm) vs the PyTorch reference, alternating',
  command: `npx tsx bench/epoch-vs-pytorch.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  loadAverageBefore: loadBefore.map((l) => Math.round(l * 100) / 100),
  loadAverageAfter: loadavg().map((l) => Math.round(l * 100) / 100),
  pytorch: { threads: 2, medianEpochSeconds: pytorchMedian },
  digits,
  runs,
};
await writeFileAtomic(join(ROOT, 'bench/results/epoch-vs-pytorch.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ pytorch: result.pytorch, digits }));
