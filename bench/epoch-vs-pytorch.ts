// One full training epoch of the seed recipe (60,000 MNIST images, batch 128), our
// `digits train` against the PyTorch reference (../shared/reference/pytorch_seed_recipe.py),
// measured side by side: the runs alternate, round after round, so drift on a shared
// machine hits both. Both report the same `seconds` (the training loop only, no evaluation).
//
//   npx tsx bench/epoch-vs-pytorch.ts --data-dir ../shared/data/mnist [--rounds 3] [--threads 1,2] [--architectures seed,compact]
//
// Writes bench/results/epoch-vs-pytorch.json: every run (with the load average when it
// started), and per architecture and thread count the min / median / max epoch time, the
// median's ratio to PyTorch's median on 2 threads (the reference's own setting) and to the
// physical limit (the epoch's FLOPs at two cores' AVX2 peak, for the seed net). The reference
// has only the seed net; the compact net's ratio is to that same time.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage, machineInfo } from './machine.ts';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const REFERENCE = resolve(ROOT, '../shared/reference/pytorch_seed_recipe.py');

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1,2' },
    architectures: { type: 'string', default: 'seed' },
    // A checkout of an earlier commit (its own bin/digits.mjs), run as a third runner in the
    // same rounds (seed net, 2 threads): before/after on the same machine at the same time.
    baseline: { type: 'string' },
  },
});
const architectures = values.architectures.split(',');
/** Issue 14's anchor: ≈ 1.14 TFLOP per seed-net epoch at two cores' AVX2 peak. */
const PHYSICAL_LIMIT_SECONDS = 11;
const dataDir = resolve(values['data-dir']);
const threadCounts = values.threads.split(',').map(Number);

interface Run {
  round: number;
  runner: 'pytorch' | 'digits' | 'baseline';
  architecture: string;
  threads: number;
  loadAverage: number;
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

async function digitsEpoch(threads: number, architecture: string, root = ROOT) {
  const out = await mkdtemp(join(tmpdir(), 'epoch-bench-'));
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [join(root, 'bin/digits.mjs'), 'train', '--recipe', 'seed', '--data-dir', dataDir, '--architecture', architecture, '--epochs', '1', '--engine', 'wasm', '--json', '--out', out],
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
const load = () => Math.round(loadavg()[0]! * 100) / 100;
for (let round = 1; round <= Number(values.rounds); round++) {
  record({ round, runner: 'pytorch', architecture: 'seed', threads: 2, loadAverage: load(), ...(await pytorchEpoch(2)) });
  for (const architecture of architectures) {
    for (const threads of threadCounts) {
      record({ round, runner: 'digits', architecture, threads, loadAverage: load(), ...(await digitsEpoch(threads, architecture)) });
    }
  }
  if (values.baseline) {
    record({ round, runner: 'baseline', architecture: 'seed', threads: 2, loadAverage: load(), ...(await digitsEpoch(2, 'seed', resolve(values.baseline))) });
  }
}

const spread = (xs: number[]) => ({ min: Math.min(...xs), median: median(xs), max: Math.max(...xs) });
const pytorchSeconds = spread(runs.filter((r) => r.runner === 'pytorch').map((r) => r.seconds));
const pytorchMedian = pytorchSeconds.median;
const digits = architectures.flatMap((architecture) =>
  threadCounts.map((threads) => {
    const seconds = spread(runs.filter((r) => r.runner === 'digits' && r.architecture === architecture && r.threads === threads).map((r) => r.seconds));
    return {
      architecture,
      threads,
      epochSeconds: seconds,
      medianEpochSeconds: seconds.median,
      ratioToPytorch2Threads: Math.round((seconds.median / pytorchMedian) * 100) / 100,
      ...(architecture === 'seed' ? { ratioToPhysicalLimit: Math.round((seconds.median / PHYSICAL_LIMIT_SECONDS) * 100) / 100 } : {}),
    };
  }),
);
function baselineSummary() {
  const seconds = spread(runs.filter((r) => r.runner === 'baseline').map((r) => r.seconds));
  return { threads: 2, epochSeconds: seconds, ratioToPytorch2Threads: Math.round((seconds.median / pytorchMedian) * 100) / 100 };
}
const result = {
  benchmark: 'one training epoch of the seed recipe, digits (wasm) vs the PyTorch reference, alternating',
  command: `npx tsx bench/epoch-vs-pytorch.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  machine: machineInfo(),
  loadAverageBefore: loadBefore.map((l) => Math.round(l * 100) / 100),
  loadAverageAfter: loadAverage(),
  pytorch: { threads: 2, epochSeconds: pytorchSeconds, medianEpochSeconds: pytorchMedian },
  physicalLimitSeconds: PHYSICAL_LIMIT_SECONDS,
  ...(values.baseline ? { baseline: baselineSummary() } : {}),
  digits,
  runs,
};
await writeFileAtomic(join(ROOT, 'bench/results/epoch-vs-pytorch.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ pytorch: result.pytorch, digits }));
