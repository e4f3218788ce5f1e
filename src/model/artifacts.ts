// A model's files, in tfjs's own layers-model format (loadable by tf.loadLayersModel in a
// browser): model.json (topology + weights manifest), weights.bin, and our metadata.json.
// This is the one place that reads them from a directory and checks them: model.json's
// shape, weights.bin's size against the manifest's weight specs, and the SHA-256 digests
// the registry records. Training (saving/loading a directory), the registry (publish, reads)
// and serving (loading a version) all go through it.
//
// No tfjs here: the registry runs in processes that never load a model (the worker's main
// thread, the API's job routes). The tfjs side (IOHandler, bytes → tf.LayersModel) is
// src/training/artifacts.ts.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';

/** The files a version's digests cover (metadata.json holds the digests, so it is not one of them). */
export const ARTIFACT_NAMES = [MODEL_JSON, WEIGHTS_BIN] as const;
export type ArtifactName = (typeof ARTIFACT_NAMES)[number];

/** Bytes per element of each tfjs dtype (a string tensor has no fixed size: none here). */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

/** One weight in model.json's manifest (tfjs's WeightsManifestEntry, as far as the checks need it). */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype?: string;
  quantization?: unknown;
}

/** model.json, checked to have what a layers model needs. */
export interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: object;
}

/** A model file that cannot be read or is not what it must be; callers turn it into their own error (422, load failure). */
export class ModelArtifactsError extends Error {
  readonly path: string;
  readonly problem: string;
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.path = path;
    this.problem = problem;
    this.name = 'ModelArtifactsError';
  }
}

/** A model directory's model.json and the weights it lists, checked against each other. */
export interface ModelFiles {
  /** model.json as stored (the registry keeps these exact bytes). */
  modelJsonBytes: Buffer;
  modelJson: ModelJson;
  /** The weights files the manifest lists, concatenated in order. */
  weights: Buffer;
}

export interface ReadModelDirOptions {
  /** Require the manifest to list exactly one file, weights.bin (what the registry stores and serves). */
  singleWeightsFile?: boolean;
}

/** Reads `dir/model.json` and its weights, checking model.json's shape and the weights' size. */
export async function readModelDir(dir: string, options: ReadModelDirOptions = {}): Promise<ModelFiles> {
  const jsonPath = join(dir, MODEL_JSON);
  const modelJsonBytes = await readModelFile(jsonPath);
  const modelJson = parseModelJson(jsonPath, modelJsonBytes);
  if (options.singleWeightsFile) checkSingleWeightsFile(jsonPath, modelJson);
  const paths = modelJson.weightsManifest.flatMap((group) => group.paths);
  const weights = Buffer.concat(await Promise.all(paths.map((path) => readModelFile(join(dir, path)))));
  checkWeightsSize(jsonPath, modelJson, weights.byteLength);
  return { modelJsonBytes, modelJson, weights };
}

/**
 * Checks a stored version's model.json and weights.bin bytes (as the registry returns them)
 * the way publish checked them; `jsonPath` names model.json in errors.
 */
export function checkModelFiles(jsonPath: string, modelJsonBytes: Buffer, weightsBytes: number): ModelJson {
  const modelJson = parseModelJson(jsonPath, modelJsonBytes);
  checkSingleWeightsFile(jsonPath, modelJson);
  checkWeightsSize(jsonPath, modelJson, weightsBytes);
  return modelJson;
}

/** A directory's metadata.json as an object; undefined when there is none, unless it is required. */
export async function readMetadataJson(dir: string, options: { required: true }): Promise<Record<string, unknown>>;
export async function readMetadataJson(dir: string, options?: { required?: boolean }): Promise<Record<string, unknown> | undefined>;
export async function readMetadataJson(dir: string, options: { required?: boolean } = {}): Promise<Record<string, unknown> | undefined> {
  const path = join(dir, METADATA_JSON);
  const bytes = await readModelFile(path).catch((error: ModelArtifactsError) => {
    if (!options.required && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw error;
  });
  if (bytes === undefined) return undefined;
  const text = bytes.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ModelArtifactsError(path, 'expected a JSON object');
}

/** model.json's weight specs, all groups in order (what tfjs's loaders take). */
export function weightSpecsOf(modelJson: ModelJson): WeightSpec[] {
  return modelJson.weightsManifest.flatMap((group) => group.weights);
}

/** SHA-256 and size of one artifact, as metadata.json records it at publish. */
export interface ArtifactDigest {
  sha256: string;
  bytes: number;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(bytes: Uint8Array): ArtifactDigest {
  return { sha256: sha256(bytes), bytes: bytes.byteLength };
}

/** What is wrong with an artifact's bytes given the digest recorded for it; undefined when they match. */
export function digestProblem(bytes: Uint8Array, expected: ArtifactDigest): string | undefined {
  if (bytes.byteLength !== expected.bytes) return `has ${bytes.byteLength} bytes, ${expected.bytes} were published`;
  const actual = sha256(bytes);
  if (actual !== expected.sha256) return `SHA-256 is ${actual}, ${expected.sha256} was published`;
  return undefined;
}

async function readModelFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ModelArtifactsError(path, `cannot read: ${(error as Error).message}`, { cause: error });
  }
}

/** model.json's bytes → a layers model's topology and weights manifest, or ModelArtifactsError. */
export function parseModelJson(jsonPath: string, bytes: Buffer): ModelJson {
  let json: Partial<ModelJson> | null;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Partial<ModelJson> | null;
  } catch (error) {
    throw new ModelArtifactsError(jsonPath, `not valid JSON (${(error as Error).message})`);
  }
  if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw new ModelArtifactsError(jsonPath, 'expected a tfjs layers model with modelTopology and weightsManifest');
  }
  for (const group of json.weightsManifest as Partial<ModelJson['weightsManifest'][number]>[]) {
    const paths: unknown = group?.paths;
    const weights: unknown = group?.weights ?? [];
    if (!Array.isArray(paths) || !paths.every((path) => typeof path === 'string') || !Array.isArray(weights)) {
      throw new ModelArtifactsError(jsonPath, `each weightsManifest group needs a list of file paths and a list of weights, got ${JSON.stringify(group)}`);
    }
    group.weights = weights as WeightSpec[];
  }
  return json as ModelJson;
}

function checkSingleWeightsFile(jsonPath: string, modelJson: ModelJson): void {
  for (const group of modelJson.weightsManifest) {
    if (group.paths.length !== 1 || normalize(group.paths[0]!) !== WEIGHTS_BIN) {
      throw new ModelArtifactsError(jsonPath, `weightsManifest paths must be ["weights.bin"], got ${JSON.stringify(group.paths)}`);
    }
  }
}

/** The weights' size must be what the manifest's shapes and dtypes add up to (quantized weights: tfjs checks those on load). */
function checkWeightsSize(jsonPath: string, modelJson: ModelJson, weightsBytes: number): void {
  let expected = 0;
  for (const spec of weightSpecsOf(modelJson)) {
    if (spec.quantization) return;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    expected += size * (DTYPE_BYTES[spec.dtype ?? 'float32'] ?? NaN);
  }
  if (expected !== weightsBytes) {
    throw new ModelArtifactsError(jsonPath, `weightsManifest describes ${expected} bytes but weights.bin has ${weightsBytes}`);
  }
}
