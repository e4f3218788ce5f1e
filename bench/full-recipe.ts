// The full 19-epoch seed recipe, writing per-epoch results to
// bench/results/full-recipe-<engine>-seed<N>.json after every epoch (so a long run
// leaves partial results), resumable from its run directory. One file per seed: the
// recipe's epoch-1 and epoch-19 accuracies vary from seed to seed by a few tenths of a
// percent, in PyTorch as here, so a single run says little on its own.
//   npx tsx bench/full-recipe.ts --data-dir ../shared/data/mnist [--engine wasm] [--epochs 19] [--seed 1]
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadCheckpoint } from '../src/training/checkpoint.ts';
import { SEED_RECIPE } from '../src/training/recipe.ts';
import { train } from '../src/training/train.ts';
import type { EngineName } from '../src/engine/types.ts';
import type { EpochMetrics } from '../src/training/types.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    engine: { type: 'string' },
    epochs: { type: 'string', default: '19' },
    seed: { type: 'string', default: String(SEED_RECIPE.seed) },
    out: { type: 'string' },
  },
});

const seed = Number(values.seed);
const started = new Date().toISOString();
const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
const epochs: EpochMetrics[] = [];
const write = async (engine: string, done: boolean) => {
  const file = join(import.meta.dirname, 'results', `full-recipe-${engine}-seed${seed}.json`);
  const best = epochs.reduce((b, m) => Math.max(b, m.testAccuracy), 0);
  await writeFileAtomic(
    file,
    JSON.stringify(
      {
        benchmark: 'full seed recipe (SGD 0.01/0.9, batch 128, 19 epochs, MNIST)',
        command: `npx tsx bench/full-recipe.ts ${process.argv.slice(2).join(' ')}`,
        started,
        finished: done ? new Date().toISOString() : null,
        machine,
        engine,
        seed,
        finalTestAccuracy: epochs.at(-1)?.testAccuracy ?? null,
        bestTestAccuracy: best,
        meanEpochSeconds: epochs.reduce((s, m) => s + m.seconds, 0) / Math.max(1, epochs.length),
        epochs,
      },
      null,
      2,
    ) + '\n',
  );
};

const outDir = resolve(values.out ?? `runs/bench-full-recipe-seed${seed}`);
// Resuming keeps the history the checkpoint already holds.
epochs.push(...((await loadCheckpoint(join(outDir, 'checkpoint')))?.state.metrics ?? []));
let pending = Promise.resolve();
const result = await train({
  recipe: { epochs: Number(values.epochs), seed },
  dataDir: values['data-dir'],
  outDir,
  resume: true,
  engine: values.engine as EngineName | undefined,
  onEpoch: (m) => {
    epochs.push(m);
    process.stdout.write(`${JSON.stringify(m)}\n`);
    pending = pending.then(() => write(m.engine, false));
  },
});
await pending;
await write(result.engine, true);
