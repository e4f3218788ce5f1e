// `digits export --format onnx --model DIR [--out FILE]`: a trained model
// directory (model.json, weights.bin, metadata.json) as an ONNX file
// (src/serving/onnx-export.ts: opset 13, BatchNorm folded), written atomically.
import { basename, join, resolve } from 'node:path';
import { DATASET_NAMES } from '../../data/types.ts';
import { initEngine } from '../../engine/index.ts';
import { writeFileAtomic } from '../../lib/atomic-write.ts';
import type { ServingMetadata } from '../../serving/loaded-model.ts';
import { foldedOf } from '../../serving/fold.ts';
import { ONNX_OPSET, seedNetToOnnx } from '../../serving/onnx-export.ts';
import { METADATA_JSON, ModelArtifactsError, readMetadataJson } from '../../model/artifacts.ts';
import { loadModel } from '../../training/artifacts.ts';
import { parse, UsageError } from '../args.ts';
import { resolveModelDir } from '../model-dir.ts';

const FORMATS = ['onnx'];
const HELP = `Usage: digits export --format onnx --model DIR [--out FILE]

Writes the model in DIR (model.json, weights.bin, metadata.json: a training
output or a registry version) as an ONNX file, opset ${ONNX_OPSET}, BatchNorm folded.
Input "image" [N,28,28,1] FP32 pixel values 0-255 (white digit on black);
outputs "probabilities" [N,10] FP32 and "label" [N] INT64.
--out defaults to DIR/model.onnx.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    format: { type: 'string' },
    model: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.format || !FORMATS.includes(values.format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  if (!values.model) throw new UsageError('--model DIR is required (a directory with model.json, weights.bin and metadata.json)');
  const modelDir = await resolveModelDir(values.model, '--model');
  const metadata = (await readMetadataJson(modelDir, { required: true }).catch((error: unknown) => {
    if (error instanceof ModelArtifactsError) throw new UsageError(`${error.message}; the model's data set and normalisation come from it`);
    throw error;
  })) as Partial<ServingMetadata>;
  if (!metadata.dataset || !DATASET_NAMES.includes(metadata.dataset)) {
    throw new UsageError(`${METADATA_JSON} must name the data set (one of ${DATASET_NAMES.join(', ')})`);
  }
  await initEngine();
  const model = await loadModel(modelDir);
  try {
    const bytes = seedNetToOnnx(foldedOf(model), {
      ...metadata,
      version: metadata.version ?? basename(modelDir),
      dataset: metadata.dataset,
      testAccuracy: metadata.testAccuracy ?? Number.NaN,
    });
    const out = resolve(values.out ?? join(modelDir, 'model.onnx'));
    await writeFileAtomic(out, bytes);
    process.stdout.write(`${out} (${bytes.length} bytes, ONNX opset ${ONNX_OPSET})\n`);
  } finally {
    model.dispose();
  }
  return 0;
}
