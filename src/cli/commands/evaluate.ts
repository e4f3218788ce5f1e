import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadDataset } from '../../data/datasets.ts';
import { DATASET_NAMES, type DatasetName } from '../../data/types.ts';
import { initEngine } from '../../engine/index.ts';
import type { EngineName } from '../../engine/types.ts';
import { seedNetWeights } from '../../model/forward.ts';
import { loadModel, METADATA_JSON } from '../../training/artifacts.ts';
import { evaluateSplit } from '../../training/train.ts';
import { parse, UsageError } from '../args.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    model: { type: 'string' },
    'data-dir': { type: 'string' },
    dataset: { type: 'string' },
    engine: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (!values.model) throw new UsageError('--model DIR is required (a directory with model.json and weights.bin)');
  const modelDir = resolve(values.model);
  const metadata = JSON.parse(await readFile(resolve(modelDir, METADATA_JSON), 'utf8').catch(() => '{}')) as {
    dataset?: DatasetName;
  };
  const dataset = (values.dataset ?? metadata.dataset ?? 'mnist') as DatasetName;
  if (!DATASET_NAMES.includes(dataset)) throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(', ')}`);
  const engine = await initEngine((values.engine ?? 'auto') as EngineName | 'auto'); // 'auto': ENGINE from the environment (lib/config.ts)
  const data = await loadDataset({ dataset, dataDir: values['data-dir'], limit: 1 });
  const model = await loadModel(modelDir);
  const started = performance.now();
  const { loss, accuracy } = evaluateSplit(seedNetWeights(model), data.test);
  const seconds = (performance.now() - started) / 1000;
  const result = { model: modelDir, dataset, images: data.test.count, testLoss: loss, testAccuracy: accuracy, seconds, engine: engine.label };
  process.stdout.write(
    values.json
      ? `${JSON.stringify(result)}\n`
      : `${dataset} test set (${data.test.count} images): loss ${loss.toFixed(4)}, accuracy ${(accuracy * 100).toFixed(2)}% [${engine.label}, ${seconds.toFixed(1)} s]\n`,
  );
  model.dispose();
  return 0;
}
