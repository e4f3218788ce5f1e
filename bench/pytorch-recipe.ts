// The PyTorch reference's `seed` recipe (../shared/reference/pytorch_seed_recipe.py) on one
// seed, every epoch written to bench/results/pytorch-seed-recipe-seed<N>.json as it comes (a
// stopped run leaves its partial result, marked unfinished). bench/recipe-table.ts puts these
// beside our presets: the two frameworks draw different initial weights from the same seed
// number, so seeds compare as distributions, not one to one.
//   npx tsx bench/pytorch-recipe.ts --data-dir ../shared/data/mnist --seed 1 [--threads 1] [--epochs 19]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage, machineInfo } from './machine.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: '../shared/data/mnist' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '19' },
    python: { type: 'string', default: '/usr/bin/python3' },
    script: { type: 'string', default: '../shared/reference/pytorch_seed_recipe.py' },
  },
});

interface PytorchEpoch {
  epoch: number;
  testAccuracy: number;
  seconds: number;
}

const seed = Number(values.seed);
const args = [resolve(values.script), '--data-dir', resolve(values['data-dir']), '--seed', String(seed), '--threads', values.threads, '--epochs', values.epochs];
const file = join(import.meta.dirname, 'results', `pytorch-seed-recipe-seed${seed}.json`);
const started = new Date().toISOString();
const machine = machineInfo();
const epochs: PytorchEpoch[] = [];
const write = (finished: boolean) =>
  writeFileAtomic(
    file,
    JSON.stringify(
      {
        benchmark: `PyTorch reference, seed recipe, ${values.epochs} epochs, MNIST, ${values.threads} thread(s)`,
        load: loadAverage(),
        command: `npx tsx bench/pytorch-recipe.ts ${process.argv.slice(2).join(' ')}`,
        reference: `${values.python} ${args.join(' ')}`,
        started,
        finished: finished ? new Date().toISOString() : null,
        machine,
        seed,
        finalTestAccuracy: finished ? (epochs.at(-1)?.testAccuracy ?? null) : null,
        bestTestAccuracy: epochs.reduce((b, m) => Math.max(b, m.testAccuracy), 0),
        epochs,
      },
      null,
      2,
    ) + '\n',
  );

const child = spawn(values.python, args, { stdio: ['ignore', 'pipe', 'inherit'] });
let pending = Promise.resolve();
for await (const line of createInterface({ input: child.stdout })) {
  if (!line.startsWith('{')) continue;
  const epoch = JSON.parse(line) as PytorchEpoch;
  epochs.push(epoch);
  process.stdout.write(`${line}\n`);
  pending = pending.then(() => write(false));
}
const code = await new Promise<number | null>((done) => child.on('close', done));
await pending;
if (code !== 0) {
  console.error(`the reference exited with ${code}; ${file} keeps ${epochs.length} epochs, unfinished`);
  process.exit(1);
}
await write(true);
