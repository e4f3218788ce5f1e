// What the fast recipe's augmentation costs per epoch: augmentImages over all 60,000
// training images in batches of 128, exactly as train.ts calls it, timed alone (3 repeats,
// min / median / max) so a busy machine's noise in a whole epoch does not hide it. Compare
// with an epoch's seconds in bench/results/full-recipe-*.json on the same machine.
//   npx tsx bench/augment-cost.ts [--out bench/results/augment-cost.json]
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset } from '../src/data/datasets.ts';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { loadAverage } from './machine.ts';
import { deriveSeed } from '../src/lib/random.ts';
import { augmentImages } from '../src/training/augment.ts';
import { FAST_RECIPE } from '../src/training/recipe.ts';

const { values } = parseArgs({ options: { 'data-dir': { type: 'string' }, out: { type: 'string' } } });
const { train, mean, std } = await loadDataset({ dataset: 'mnist', dataDir: values['data-dir'] });
const batch = FAST_RECIPE.batchSize;
const source = new Float32Array(batch * 784);
const target = new Float32Array(batch * 784);
const seconds: number[] = [];
for (let repeat = 0; repeat < 3; repeat++) {
  const start = performance.now();
  for (let first = 0; first < train.count; first += batch) {
    const count = Math.min(batch, train.count - first);
    source.set(train.images.subarray(first * 784, (first + count) * 784));
    augmentImages(source, target, count, FAST_RECIPE.augmentation!, deriveSeed(1, repeat, first), -mean / std);
  }
  seconds.push((performance.now() - start) / 1000);
}
seconds.sort((a, b) => a - b);
const result = {
  benchmark: 'augmentation cost per epoch (60,000 MNIST images, batches of 128, one thread)',
  command: `npx tsx bench/augment-cost.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
  loadBefore: loadAverage(),
  augmentation: FAST_RECIPE.augmentation,
  secondsPerEpoch: { min: seconds[0], median: seconds[1], max: seconds[2] },
};
console.log(JSON.stringify(result, null, 2));
if (values.out) await writeFileAtomic(join(process.cwd(), values.out), JSON.stringify(result, null, 2) + '\n');
