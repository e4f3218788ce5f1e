// `digits predict FILE…`: classify image files with a running service (--url, the
// default; --model NAME picks a model name there) or locally with a model directory
// (--model-dir), through the same decoding, preprocessing and normalisation as POST /v1/predict.
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { CLASS_NAMES, type DatasetName } from '../../data/types.ts';
import { initEngine } from '../../engine/index.ts';
import { LoadedModel, type ModelInfo, type Prediction, type ServingMetadata } from '../../serving/loaded-model.ts';
import { instancePixels } from '../../serving/instances.ts';
import { MODEL_JSON, readMetadataJson } from '../../model/artifacts.ts';
import { loadModel } from '../../training/artifacts.ts';
import { isModelName } from '../../registry/model-name.ts';
import { parse, UsageError } from '../args.ts';
import { loadClientSettings } from '../../lib/config.ts';
import { checkInputFiles, resolveModelDir } from '../model-dir.ts';

export const HELP = `Usage: digits predict FILE.png|FILE.jpg… [options]

  --url URL        a running service (default http://127.0.0.1:$PORT, PORT default 3000)
  --model NAME     the model name on the service (default: the service's DEFAULT_MODEL)
  --version V      a version of that model (default: its default version)
  --model-dir DIR  classify locally with a model directory (model.json, weights.bin, metadata.json)
                   or a registry pointer (MODEL_DIR/latest, MODEL_DIR/defaults/NAME);
                   --model DIR still works when DIR is a path or an existing model directory
  --api-key KEY    with --url: sent as a bearer token (default: env DIGITS_API_KEY)
  --preprocess     crop, resize and centre any photo or drawing (?preprocess=mnist)
  --json           one JSON object: the service's response plus the file names
`;

/** How many files go in one request (the service's default PREDICT_MAX_INSTANCES). */
const FILES_PER_REQUEST = 64;
/** Images are checked against this pixel budget locally, as the service does by default. */
const LOCAL_MAX_PIXELS = 24_000_000;

interface Result {
  predictions: Prediction[];
  model: ModelInfo;
}

class PredictRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PredictRequestError';
  }
}

async function viaService(
  url: string,
  files: string[],
  options: { model?: string; version?: string; apiKey?: string; preprocess: boolean },
): Promise<Result> {
  const endpoint = new URL('/v1/predict', url);
  if (options.model) endpoint.searchParams.set('model', options.model);
  if (options.version && options.version !== 'latest') endpoint.searchParams.set('version', options.version);
  if (options.preprocess) endpoint.searchParams.set('preprocess', 'mnist');
  const predictions: Prediction[] = [];
  let model: ModelInfo | undefined;
  for (let start = 0; start < files.length; start += FILES_PER_REQUEST) {
    const form = new FormData();
    for (const file of files.slice(start, start + FILES_PER_REQUEST)) {
      form.append('file', new Blob([new Uint8Array(await readFile(file))]), basename(file));
    }
    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        body: form,
        headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
      });
    } catch (error) {
      throw new PredictRequestError(`cannot reach ${endpoint.origin}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    // A body that is not JSON (a proxy's HTML error page) is reported below with the status.
    const body = (await response.json().catch(() => undefined)) as (Result & { detail?: string }) | undefined;
    if (!response.ok || !body) throw new PredictRequestError(`${endpoint.origin} answered ${response.status}: ${body?.detail ?? response.statusText}`);
    predictions.push(...body.predictions);
    model = body.model;
  }
  return { predictions, model: model! };
}

async function locally(dir: string, files: string[], preprocess: boolean): Promise<Result> {
  await initEngine();
  const metadata = (await readMetadataJson(dir, { required: true })) as Partial<ServingMetadata> & { dataset?: DatasetName };
  const serving: ServingMetadata = {
    ...metadata,
    version: metadata.version ?? basename(dir),
    dataset: metadata.dataset ?? 'mnist',
    testAccuracy: metadata.testAccuracy ?? Number.NaN,
  };
  const model = await LoadedModel.fromLayersModel(await loadModel(dir), serving, { maxBatch: FILES_PER_REQUEST, maxWaitMs: 0 });
  try {
    const pixels = await Promise.all(
      files.map(async (file) => instancePixels({ what: file, bytes: await readFile(file) }, { preprocess, maxPixels: LOCAL_MAX_PIXELS })),
    );
    return { predictions: await model.predict(pixels), model: model.info };
  } finally {
    model.retire();
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      url: { type: 'string' },
      model: { type: 'string' },
      'model-dir': { type: 'string' },
      version: { type: 'string' },
      'api-key': { type: 'string' },
      preprocess: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('give one or more image files (PNG or JPEG)');
  // Before named models --model meant a directory; a path or an existing model directory still does.
  const legacyDir = values.model !== undefined && !values['model-dir'] && (await isModelDirectory(values.model)) ? values.model : undefined;
  const modelDir = values['model-dir'] ?? legacyDir;
  const modelName = legacyDir ? undefined : values.model;
  if (modelName !== undefined && !isModelName(modelName)) throw new UsageError(`--model ${JSON.stringify(modelName)} is not a model name (a-z 0-9 . _ -) nor a model directory`);
  if (values.url && modelDir) throw new UsageError('use either --url (a running service) or --model-dir DIR (locally), not both');
  if (modelDir && (values.version || modelName)) throw new UsageError('--model NAME and --version pick a model on a service; with --model-dir the directory is the model');
  const preprocess = values.preprocess ?? false;
  const client = loadClientSettings();
  await checkInputFiles(positionals);

  const result = modelDir
    ? await locally(await resolveModelDir(modelDir, values['model-dir'] ? '--model-dir' : '--model'), positionals, preprocess)
    : await viaService(values.url ?? `http://127.0.0.1:${client.port}`, positionals, {
        model: modelName,
        version: values.version,
        apiKey: values['api-key'] ?? client.apiKey,
        preprocess,
      });

  if (values.json) {
    const predictions = result.predictions.map((prediction, i) => ({ file: positionals[i], ...prediction }));
    process.stdout.write(`${JSON.stringify({ predictions, model: result.model })}\n`);
  } else {
    const names = CLASS_NAMES[result.model.dataset] ?? CLASS_NAMES.mnist;
    const width = Math.max(...positionals.map((file) => file.length));
    result.predictions.forEach((prediction, i) => {
      const confidence = `${(prediction.confidence * 100).toFixed(1)}%`;
      process.stdout.write(`${positionals[i]!.padEnd(width)}  ${names[prediction.label]}  (${confidence})\n`);
    });
    process.stdout.write(`model ${result.model.model ?? result.model.dataset} ${result.model.version} (${result.model.dataset})\n`);
  }
  return 0;
}

async function isModelDirectory(value: string): Promise<boolean> {
  if (!isModelName(value)) return true; // a path: only a directory can be meant
  return stat(resolve(value, MODEL_JSON)).then(
    (found) => found.isFile(),
    () => false,
  );
}
