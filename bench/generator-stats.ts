// Is our seed recipe's epoch 1 really behind PyTorch's, and if so, is a random stream the
// cause? (1) The epoch-1 test accuracies over seeds, ours against the PyTorch reference's,
// with a permutation test on the difference of means; (2) the statistics of the three
// streams that differ between the frameworks: dropout masks (keep rate; independence across
// steps, channels, positions and layers), initial weights (uniformity within ±1/√fan_in,
// independence across seeds) and shuffles (independence across epochs, uniform coverage).
//   npx tsx bench/generator-stats.ts [--out bench/results/generator-stats.json]
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dropoutKey, keepMask, keepThreshold } from '../src/engine/dropout-mask.ts';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { deriveSeed, mulberry32, permutation } from '../src/lib/random.ts';
import { buildSeedNet } from '../src/model/seed-net.ts';

const { values } = parseArgs({ options: { out: { type: 'string' } } });
await tf.setBackend('cpu');

function mean(xs: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i]!;
  return sum / xs.length;
}
/** Pearson correlation of two equally long series. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = a[i]! - ma, db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}
const round = (x: number, digits = 5) => Math.round(x * 10 ** digits) / 10 ** digits;

// (1) Epoch 1 over seeds. Ours on the seed numbers the issue lists (seed 1 from the run
// of that day, the rest from full-recipe-seeds.json); PyTorch's as the issue reports them.
const seeds = JSON.parse(await readFile(join(import.meta.dirname, 'results', 'full-recipe-seeds.json'), 'utf8')) as {
  digits: { seed: number; epoch1TestAccuracy: number }[];
};
const oursBySeed = new Map(seeds.digits.map((d) => [d.seed, d.epoch1TestAccuracy]));
oursBySeed.set(1, 0.9701);
const sameSeeds = [1, 2, 3, 5, 6, 7, 9, 11, 13];
const ours = sameSeeds.map((s) => oursBySeed.get(s)!);
const oursAll = [...oursBySeed.values()];
const torch = [0.9825, 0.9774, 0.9796, 0.9793, 0.9764, 0.9793, 0.9785, 0.9743, 0.9803];
function permutationTest(a: number[], b: number[], rounds = 200_000) {
  const observed = mean(b) - mean(a);
  const pooled = [...a, ...b];
  const random = mulberry32(12345);
  let asExtreme = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = pooled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pooled[i], pooled[j]] = [pooled[j]!, pooled[i]!];
    }
    const diff = mean(pooled.slice(a.length)) - mean(pooled.slice(0, a.length));
    if (Math.abs(diff) >= Math.abs(observed) - 1e-12) asExtreme++;
  }
  return { meanDifference: round(observed), twoSidedP: round(asExtreme / rounds, 4) };
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const epoch1 = {
  seeds: sameSeeds,
  ours,
  pytorch: torch,
  oursMean: round(mean(ours)),
  pytorchMean: round(mean(torch)),
  oursMedian: median(ours),
  pytorchMedian: median(torch),
  sameSeedNumbers: permutationTest(ours, torch),
  sameSeedNumbersWithoutSeed1: permutationTest(ours.slice(1), torch),
  allOurSeeds: { count: oursAll.length, mean: round(mean(oursAll)), ...permutationTest(oursAll, torch) },
};

// (2a) Dropout masks as training draws them: seed 4, epoch 1, consecutive batches, layer 0
// ([128, 26, 26, 16], channels last) and layer 1 ([128, 24, 24, 16]).
const threshold = keepThreshold(0.1);
const layerSize = (side: number) => 128 * side * side * 16;
const mask = (batch: number, layer: number, size: number) => keepMask(size, dropoutKey(deriveSeed(deriveSeed(4, 1, batch), layer)), threshold);
const steps = Array.from({ length: 8 }, (_, b) => mask(b, 0, layerSize(26)));
const shifted = (m: Float32Array, by: number) => [m.subarray(0, m.length - by), m.subarray(by)] as const;
const layer1 = mask(0, 1, layerSize(24));
const dropout = {
  elementsPerMask: layerSize(26),
  keepRate: round(mean(steps.map((m) => mean(m)))),
  expectedKeepRate: 0.9,
  correlationNextStep: round(mean(steps.slice(1).map((m, i) => correlation(steps[i]!, m)))),
  correlationNextChannel: round(correlation(...shifted(steps[0]!, 1))),
  correlationNextPosition: round(correlation(...shifted(steps[0]!, 16))),
  correlationNextRow: round(correlation(...shifted(steps[0]!, 16 * 26))),
  correlationLayer0Layer1: round(correlation(steps[0]!.subarray(0, layer1.length), layer1)),
  noiseLevel: round(1 / Math.sqrt(layerSize(26))),
};

// (2b) Initial weights: every conv kernel of seeds 1–20, scaled by its bound to [-1, 1].
const ks = (sorted: number[]) => sorted.reduce((d, x, i) => Math.max(d, Math.abs((x + 1) / 2 - (i + 0.5) / sorted.length)), 0);
const kernels = Array.from({ length: 20 }, (_, s) => {
  const model = buildSeedNet(s + 1);
  const scaled = model.layers
    .filter((l) => l.name.endsWith('_conv'))
    .flatMap((l) => {
      const kernel = l.getWeights()[0]!;
      const fanIn = kernel.shape[0]! * kernel.shape[1]! * kernel.shape[2]!;
      return Array.from(kernel.dataSync(), (v) => v * Math.sqrt(fanIn));
    });
  model.dispose();
  return scaled;
});
const all = kernels.flat().sort((a, b) => a - b);
const init = {
  values: all.length,
  min: round(all[0]!),
  max: round(all.at(-1)!),
  mean: round(mean(all)),
  variance: round(mean(all.map((v) => v * v))),
  expectedVariance: round(1 / 3),
  ksDistanceToUniform: round(ks(all)),
  ks95Critical: round(1.36 / Math.sqrt(all.length)),
  meanCorrelationBetweenSeeds: round(mean(kernels.slice(1).map((k, i) => correlation(kernels[i]!, k)))),
};

// (2c) Shuffles of seed 4: positions of each image in consecutive epochs; first-batch coverage.
const orders = Array.from({ length: 50 }, (_, e) => permutation(60_000, deriveSeed(4, e + 1)));
const positions = orders.map((order) => {
  const at = new Float64Array(order.length);
  order.forEach((image, position) => (at[image] = position));
  return at;
});
const firstBatchCounts = new Float64Array(10);
for (const order of orders) for (const image of order.subarray(0, 128)) firstBatchCounts[Math.floor(image / 6000)]!++;
const expected = (50 * 128) / 10;
const shuffle = {
  epochs: orders.length,
  meanCorrelationOfPositionsNextEpoch: round(mean(positions.slice(1).map((p, i) => correlation(positions[i]!, p)))),
  noiseLevel: round(1 / Math.sqrt(60_000)),
  firstBatchImagesPerTenthOfTheSet: Array.from(firstBatchCounts),
  chiSquare9dof: round(firstBatchCounts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0), 2),
  chiSquare95Critical: 16.92,
};

const result = {
  benchmark: 'seed recipe epoch 1 against the PyTorch reference over seeds; statistics of our dropout, init and shuffle streams',
  command: `npx tsx bench/generator-stats.ts ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  epoch1,
  dropout,
  init,
  shuffle,
};
console.log(JSON.stringify(result, null, 2));
if (values.out) await writeFileAtomic(join(process.cwd(), values.out), JSON.stringify(result, null, 2) + '\n');
