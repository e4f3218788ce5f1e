// A full recipe run (a preset, seed recipe by default), writing per-epoch results to
// bench/results/full-recipe-[<preset>-][<architecture>-]<engine>-seed<N>.json after every
// epoch (so a long run leaves partial results), resumable from its run directory. One file
// per seed: accuracies vary from seed to seed by a few tenths of a percent, in PyTorch as
// here, so a single run says little on its own; bench/recipe-table.ts summarises seeds 1–5.
//   npx tsx bench/full-recipe.ts --data-dir ../shared/data/mnist [--recipe seed|fast]
//     [--architecture seed|compact] [--engine wasm] [--epochs N] [--seed 1]
//     [--overrides '{"weightDecay":1e-4}' --tag wd1e-4]
// --overrides screens a variant of the preset (any Recipe fields, as JSON); --tag names its
// files (results and run directory) so attempts do not overwrite each other or the preset's.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage, machineInfo } from './machine.ts';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/index.ts';
import { loadCheckpoint } from '../src/training/checkpoint.ts';
import type { ArchitectureName } from '../src/model/spec.ts';
import { PRESETS, resolveRecipe } from '../src/training/recipe.ts';
import { train } from '../src/training/train.ts';
import type { EngineName } from '../src/engine/types.ts';
import type { EpochMetrics, PresetName, Recipe } from '../src/training/types.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    engine: { type: 'string' },
    recipe: { type: 'string', default: 'seed' },
    architecture: { type: 'string', default: 'seed' },
    epochs: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    overrides: { type: 'string' },
    tag: { type: 'string' },
  },
});

const preset = values.recipe as PresetName;
const architecture = values.architecture as ArchitectureName;
const overrides = values.overrides === undefined ? {} : (JSON.parse(values.overrides) as Partial<Recipe>);
// Flags given win over --overrides; a flag not given must not erase an override's value.
const recipe = resolveRecipe({
  ...overrides,
  preset,
  architecture,
  ...(values.epochs === undefined ? {} : { epochs: Number(values.epochs) }),
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
});
const seed = recipe.seed;
// The seed recipe's files keep their original names.
const prefix = [
  preset === 'seed' ? '' : `${preset}-`,
  architecture === 'seed' ? '' : `${architecture}-`,
  recipe.epochs === PRESETS[preset].epochs ? '' : `${recipe.epochs}epochs-`,
  values.tag === undefined ? '' : `${values.tag}-`,
].join('');
const started = new Date().toISOString();
const machine = machineInfo();
const epochs: EpochMetrics[] = [];
const write = async (engine: string, done: boolean) => {
  const file = join(import.meta.dirname, 'results', `full-recipe-${prefix}${engine}-seed${seed}.json`);
  const best = epochs.reduce((b, m) => Math.max(b, m.testAccuracy), 0);
  await writeFileAtomic(
    file,
    JSON.stringify(
      {
        benchmark: `full ${preset} recipe, ${architecture} architecture, ${recipe.epochs} epochs, MNIST`,
        load: loadAverage(),
        recipe,
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

const outDir = resolve(values.out ?? `runs/bench-full-recipe-${prefix}seed${seed}`);
// Resuming keeps the history the checkpoint already holds (decoding it needs the engine up).
await initEngine(values.engine as EngineName | undefined);
const checkpoint = await loadCheckpoint(join(outDir, 'checkpoint'));
epochs.push(...(checkpoint?.state.metrics ?? []));
if (checkpoint) tf.dispose([...Object.values(checkpoint.modelWeights), ...checkpoint.optimizerWeights.map((w) => w.tensor)]);
let pending = Promise.resolve();
const result = await train({
  recipe,
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
