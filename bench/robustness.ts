// ?preprocess=mnist accuracy on digits that are not MNIST (bench/digit-corpus.ts): each
// image goes through the serving path (decodeImage → toMnistForm → the folded network),
// and the accuracy is reported overall, per source kind and per variant, per model, with
// the stroke-width normalisation (the default) and without it (as before it existed).
//   npx tsx bench/robustness.ts --model runs/X/model [--model runs/Y/model ...] [--out bench/results/robustness.json]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initEngine } from '../src/engine/index.ts';
import { writeFileAtomic } from '../src/lib/atomic-write.ts';
import { decodeImage } from '../src/serving/decode.ts';
import { foldedOf } from '../src/serving/fold.ts';
import { FoldedNet } from '../src/serving/folded-forward.mjs';
import { PREPROCESS_MAX_SIDE, toMnistForm } from '../src/serving/mnist-form.ts';
import { loadModel } from '../src/training/artifacts.ts';
import { generateDigitCorpus, type CorpusImage } from './digit-corpus.ts';

const { values } = parseArgs({ options: { model: { type: 'string', multiple: true }, out: { type: 'string' } } });
if (!values.model?.length) throw new Error('give at least one --model DIR');

export interface RobustnessResult {
  accuracy: number;
  count: number;
  bySource: Record<string, number>;
  byVariant: Record<string, number>;
}

function summarise(images: CorpusImage[], correct: boolean[]): RobustnessResult {
  const rate = (key: (i: CorpusImage) => string) => {
    const totals = new Map<string, [number, number]>();
    images.forEach((image, i) => {
      const k = key(image);
      const [hit, all] = totals.get(k) ?? [0, 0];
      totals.set(k, [hit + (correct[i] ? 1 : 0), all + 1]);
    });
    return Object.fromEntries([...totals].map(([k, [hit, all]]) => [k, Math.round((hit / all) * 1e4) / 1e4]));
  };
  return {
    accuracy: correct.filter(Boolean).length / correct.length,
    count: correct.length,
    bySource: rate((i) => (i.source.startsWith('pen:') ? i.source.split(':').slice(0, 2).join(':') : i.source)),
    byVariant: rate((i) => i.variant),
  };
}

await initEngine();
const corpus = await generateDigitCorpus();
const formsOf = (normaliseStrokes: boolean) =>
  Promise.all(
    corpus.map(async (image, i) => {
      const gray = await decodeImage(image.bytes, `corpus[${i}]`, { maxPixels: 4_000_000, background: 255, maxSide: PREPROCESS_MAX_SIDE });
      return toMnistForm(gray, `corpus[${i}]`, { normaliseStrokes });
    }),
  );
const preprocessings = { strokesNormalised: await formsOf(true), strokesAsDrawn: await formsOf(false) };
const results: Record<string, Record<string, unknown>> = {};
for (const dir of values.model) {
  const metadata = JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8'));
  const { mean, std } = metadata.normalization as { mean: number; std: number };
  const model = await loadModel(dir);
  const { layout, weights } = foldedOf(model);
  const net = new FoldedNet(layout, weights);
  results[dir] = { model: dir, recipe: metadata.recipe, testAccuracy: metadata.testAccuracy };
  for (const [name, forms] of Object.entries(preprocessings)) {
    const logits = new Float32Array(forms.length * 10);
    net.logits(Float32Array.from(forms.flatMap((f) => Array.from(f, (v) => (v / 255 - mean) / std))), forms.length, logits);
    const labels = forms.map((_, i) => {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      return row.indexOf(Math.max(...row));
    });
    const result = summarise(corpus, corpus.map((image, i) => labels[i] === image.label));
    results[dir][name] = result;
    console.log(JSON.stringify({ model: dir, preset: metadata.recipe?.preset, epochs: metadata.recipe?.epochs, preprocessing: name, ...result }));
  }
  model.dispose();
}
if (values.out) await writeFileAtomic(values.out, JSON.stringify({ benchmark: 'preprocess=mnist accuracy on bench/digit-corpus.ts', date: new Date().toISOString(), results }, null, 2) + '\n');
