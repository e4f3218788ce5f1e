import { loadDataset } from '../../data/datasets.ts';
import { DATASET_NAMES, type DatasetName } from '../../data/types.ts';
import { initEngine } from '../../engine/index.ts';
import type { EngineName } from '../../engine/types.ts';
import { seedNetWeights } from '../../model/forward.ts';
import { readMetadataJson } from '../../model/artifacts.ts';
import { loadModel } from '../../training/artifacts.ts';
import { evaluateSplit } from '../../training/train.ts';
import { parse, UsageError } from '../args.ts';
import { resolveModelDir } from '../model-dir.ts';

export const HELP = `Usage: digits evaluate --model DIR [options]

Test-set loss and accuracy of a saved model.

  --model DIR                     a model directory (model.json, weights.bin, metadata.json),
                                  or a registry pointer (MODEL_DIR/latest, MODEL_DIR/defaults/NAME)
  --dataset mnist|fashion-mnist   (default: the model's, from metadata.json)
  --data-dir DIR                  local IDX files (else MNIST_DIR / FASHION_MNIST_DIR, else download)
  --engine auto|gpu|node|wasm|cpu (default: ENGINE or auto)
  --json                          one JSON object
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    model: { type: 'string' },
    'data-dir': { type: 'string' },
    dataset: { type: 'string' },
    engine: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.model) throw new UsageError('--model DIR is required (a directory with model.json and weights.bin)');
  // Checked before the data set is located: a missing model must not surface as a download failure.
  const modelDir = await resolveModelDir(values.model, '--model');
  const metadata: { dataset?: DatasetName } = (await readMetadataJson(modelDir)) ?? {};
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
