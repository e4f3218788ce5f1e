// Summarises bench/full-recipe.ts results per preset and architecture over seeds 1–5:
// final-epoch test accuracy min / median / max, how many seeds finished, and seconds per
// epoch (min / median / max over every epoch run; noisy on a shared machine). Prints the
// README's Markdown table; an unfinished run counts as unfinished, never as a result.
//   npx tsx bench/recipe-table.ts
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface Result {
  seed: number;
  finished: string | null;
  finalTestAccuracy: number | null;
  recipe?: { preset: string; architecture: string; epochs: number };
  epochs: { epoch: number; testAccuracy: number; seconds: number }[];
}

const dir = join(import.meta.dirname, 'results');
const files = (await readdir(dir)).filter((f) => /^full-recipe-.*seed\d+\.json$/.test(f));
const groups = new Map<string, { file: string; result: Result }[]>();
for (const file of files) {
  const result = JSON.parse(await readFile(join(dir, file), 'utf8')) as Result;
  result.seed ??= Number(/seed(\d+)\.json$/.exec(file)![1]); // the oldest files lack the field
  if (result.seed < 1 || result.seed > 5) continue;
  const recipe = result.recipe ?? { preset: 'seed', architecture: 'seed', epochs: 19 };
  const key = `${recipe.preset} | ${recipe.architecture} | ${recipe.epochs}`;
  groups.set(key, [...(groups.get(key) ?? []), { file, result }]);
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { min: sorted[0]!, median, max: sorted.at(-1)! };
};

console.log('| recipe | architecture | epochs | seeds finished | final accuracy min / median / max | per seed (final) | s/epoch min / median / max |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
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
