// Summarises bench/full-recipe.ts results per preset and architecture over seeds 1–5:
// final-epoch test accuracy min / median / max, how many seeds finished, and seconds per
// epoch (min / median / max over every epoch run; noisy on a shared machine). Prints the
// README's Markdown table; an unfinished run counts as unfinished, never as a result.
// Runs whose hyper-parameters differ from their preset's current values (screened variants,
// `bench/full-recipe.ts --overrides`, or the preset as it was before a change) form their own
// rows, with the differences in the "variant" column. The PyTorch reference's `seed` recipe
// runs (bench/pytorch-recipe.ts) get a row of their own.
//   npx tsx bench/recipe-table.ts
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRESETS } from '../src/training/recipe.ts';
import type { PresetName, Recipe } from '../src/training/types.ts';

interface Result {
  seed: number;
  finished: string | null;
  finalTestAccuracy: number | null;
  recipe?: Recipe;
  epochs: { epoch: number; testAccuracy: number; seconds: number }[];
}

// Fields that name a run rather than its training (architecture and epochs have columns).
const NOT_VARIANT = new Set(['preset', 'architecture', 'epochs', 'seed', 'dataset', 'limit', 'targetAccuracy']);
const show = (v: unknown) =>
  v !== null && typeof v === 'object'
    ? Object.entries(v)
        .map(([k, x]) => `${k} ${String(x)}`)
        .join(', ')
    : String(v);
/** The hyper-parameters where `recipe` differs from its preset now, e.g. "weightDecay 0.0001; labelSmoothing 0". */
function variantOf(recipe: Recipe): string {
  const preset = PRESETS[recipe.preset as PresetName] as Recipe | undefined;
  if (!preset) return '?';
  const differences = Object.keys(preset)
    .filter((k) => !NOT_VARIANT.has(k))
    .filter((k) => JSON.stringify(recipe[k as keyof Recipe]) !== JSON.stringify(preset[k as keyof Recipe]))
    .map((k) => `${k} ${show(recipe[k as keyof Recipe])}`);
  return differences.join('; ') || 'as preset';
}

const dir = join(import.meta.dirname, 'results');
const files = (await readdir(dir)).filter((f) => /^full-recipe-.*seed\d+\.json$/.test(f));
const groups = new Map<string, { file: string; result: Result }[]>();
for (const file of files) {
  const result = JSON.parse(await readFile(join(dir, file), 'utf8')) as Result;
  result.seed ??= Number(/seed(\d+)\.json$/.exec(file)![1]); // the oldest files lack the field
  if (result.seed < 1 || result.seed > 5) continue;
  const recipe = result.recipe ?? PRESETS.seed;
  const key = `${recipe.preset} | ${variantOf(recipe)} | ${recipe.architecture} | ${recipe.epochs}`;
  groups.set(key, [...(groups.get(key) ?? []), { file, result }]);
}

// The PyTorch reference's seed recipe on the same seed numbers (bench/pytorch-recipe.ts): its own
// row, beside ours (different frameworks draw different initial weights from one seed number).
for (const file of (await readdir(dir)).filter((f) => /^pytorch-seed-recipe-seed\d+\.json$/.test(f))) {
  const result = JSON.parse(await readFile(join(dir, file), 'utf8')) as Result;
  if (result.seed < 1 || result.seed > 5) continue;
  const key = 'seed, PyTorch reference | as preset | seed | 19';
  groups.set(key, [...(groups.get(key) ?? []), { file, result }]);
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
};

console.log('| recipe | variant | architecture | epochs | seeds finished | final accuracy min / median / max | per seed (final) | s/epoch min / median / max |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [key, runs] of [...groups].sort()) {
  runs.sort((a, b) => a.result.seed - b.result.seed);
  const done = runs.filter((r) => r.result.finished && r.result.epochs.length === (r.result.recipe?.epochs ?? 19));
  const finals = done.map((r) => r.result.finalTestAccuracy!);
  const seconds = runs.flatMap((r) => r.result.epochs.map((e) => e.seconds));
  const perSeed = runs
    .map((r) => `${r.result.seed}: ${r.result.finished ? pct(r.result.finalTestAccuracy!) : `unfinished (${r.result.epochs.length} epochs, last ${r.result.epochs.length ? pct(r.result.epochs.at(-1)!.testAccuracy) : '–'})`}`)
    .join('; ');
  const acc = finals.length ? stats(finals) : undefined;
  const sec = seconds.length ? stats(seconds) : undefined;
  console.log(
    `| ${key} | ${done.length} of 5 (seeds ${done.map((r) => r.result.seed).join(', ') || '–'}) | ${acc ? `${pct(acc.min)} / ${pct(acc.median)} / ${pct(acc.max)}` : '–'} | ${perSeed} | ${sec ? `${sec.min.toFixed(0)} / ${sec.median.toFixed(0)} / ${sec.max.toFixed(0)}` : '–'} |`,
  );
}
