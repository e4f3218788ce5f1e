// Resident memory of a training process: runs `digits train` (seed recipe, the full MNIST
// training set, wasm engine) and samples its VmRSS from /proc every 100 ms; reports the peak
// while training and the peak overall (evaluation and saving included), from VmHWM as well.
//
//   npx tsx bench/train-rss.ts --data-dir ../shared/data/mnist [--epochs 1] [--threads 2] [--tag NAME]
//
// Writes bench/results/train-rss[-TAG].json.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage } from './machine.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    epochs: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    recipe: { type: 'string', default: 'seed' },
    tag: { type: 'string', default: '' },
  },
});

const status = (pid: number): Record<string, number> => {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(VmRSS|VmHWM):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]!] = Number(m[2]) / 1024;
    }
  } catch {
    // exited
  }
  return out;
};

const out = await mkdtemp(join(tmpdir(), 'train-rss-'));
const loadBefore = loadavg();
const child = spawn(
  process.execPath,
  [join(ROOT, 'bin/digits.mjs'), 'train', '--data-dir', resolve(values['data-dir']!), '--recipe', values.recipe!, '--epochs', values.epochs!, '--engine', 'wasm', '--json', '--out', out],
  { env: { ...process.env, WASM_THREADS: values.threads }, stdio: ['ignore', 'pipe', 'inherit'] },
);
const epochs: unknown[] = [];
let stdout = '';
child.stdout.on('data', (chunk: Buffer) => {
  stdout += chunk.toString();
  for (;;) {
    const nl = stdout.indexOf('\n');
    if (nl < 0) break;
    const line = stdout.slice(0, nl);
    stdout = stdout.slice(nl + 1);
    if (line.startsWith('{')) epochs.push(JSON.parse(line));
  }
});
const samples: { t: number; rssMiB: number; epochsDone: number }[] = [];
const start = performance.now();
const timer = setInterval(() => {
  const s = status(child.pid!);
  if (s.VmRSS) samples.push({ t: Math.round(performance.now() - start), rssMiB: Math.round(s.VmRSS), epochsDone: epochs.length });
  if (s.VmHWM) peakHwm = Math.max(peakHwm, s.VmHWM);
}, 100);
let peakHwm = 0;
const code = await new Promise<number | null>((done) => child.on('exit', done));
clearInterval(timer);
await rm(out, { recursive: true, force: true });
if (code !== 0) throw new Error(`digits train exited with ${code}`);

const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);
// "While training": from the first sample at which RSS stopped growing by the data load, i.e.
// samples of the first epoch's second half, before its evaluation can start.
const firstEpochSamples = samples.filter((s) => s.epochsDone === 0);
const training = firstEpochSamples.slice(Math.floor(firstEpochSamples.length / 2));
const result = {
  benchmark: 'resident memory (VmRSS) of `digits train`, seed recipe on the full MNIST training set, wasm engine',
  command: `npx tsx bench/train-rss.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  threads: Number(values.threads),
  loadAverageBefore: loadBefore.map((l) => Math.round(l * 100) / 100),
  loadAverageAfter: loadAverage(),
  rssWhileTrainingMiB: { min: Math.min(...training.map((s) => s.rssMiB)), max: max(training.map((s) => s.rssMiB)) },
  peakRssMiB: max(samples.map((s) => s.rssMiB)),
  vmHwmMiB: Math.round(peakHwm),
  epochs,
  samples: samples.filter((_, i) => i % 10 === 0),
};
const name = `train-rss${values.tag ? `-${values.tag}` : ''}.json`;
await writeFileAtomic(join(ROOT, 'bench/results', name), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, samples: undefined }));
