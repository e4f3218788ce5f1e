// One model version in memory, ready to predict: its weights folded for inference
// (inference-net.ts), its own normalisation (from metadata.json) and its own micro-batcher.
// Forward passes run on the inference threads when there are any (inference-pool.ts),
// else on the event loop. Requests hold a
// lease while they use it; a retired model (swapped out or evicted) is disposed
// when the last lease ends, so requests in flight finish on the model they started with.
import * as tf from '@tensorflow/tfjs';
import { DATASET_SOURCES } from '../data/datasets.ts';
import type { DatasetName } from '../data/types.ts';
import { seedNetWeights } from '../model/forward.ts';
import { MODEL_JSON, WEIGHTS_BIN, checkModelFiles } from '../model/artifacts.ts';
import { layersModelFrom } from '../training/artifacts.ts';
import type { ModelRegistry, ModelVersion } from '../registry/types.ts';
import { ModelLoadError } from './errors.ts';
import { InferenceNet } from './inference-net.ts';
import type { InferencePool } from './inference-pool.ts';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher.ts';
import { IMAGE_PIXELS, INPUT_SHAPE, NUM_CLASSES, normalisePixels, type Normalization } from '../model/spec.ts';

/** What a prediction response says about the model that made it. */
export interface ModelInfo {
  /** The model name the version belongs to. */
  model: string;
  version: string;
  dataset: DatasetName;
  testAccuracy: number;
}

export interface Prediction {
  label: number;
  confidence: number;
  probabilities: number[];
}


/** What serving reads from a model's metadata.json (a registry version's, or a training run's output). */
export interface ServingMetadata {
  version: string;
  /** Model name; a model directory outside the registry has none (its data set's name is used). */
  model?: string;
  dataset: DatasetName;
  testAccuracy: number;
  /** Training records it; older or hand-made models get their data set's constants. */
  normalization?: Partial<Normalization>;
}

/** How a model runs its forward passes: the batcher's bounds, and the inference threads if any. */
export interface ForwardOptions extends MicroBatcherOptions {
  /** Inference threads (INFERENCE_THREADS > 0); without them forward passes run on the event loop. */
  pool?: InferencePool;
}

/** Where a model's folded weights live: tensors on this thread, or copies in the inference threads. */
type Runner = { net: InferenceNet } | { pool: InferencePool; id: number };

export function normalizationOf(metadata: ServingMetadata): Normalization {
  const recorded = metadata.normalization;
  const { mean, std } = recorded ?? DATASET_SOURCES[metadata.dataset];
  if (typeof mean !== 'number' || typeof std !== 'number' || !Number.isFinite(mean) || !(std > 0)) {
    throw new Error(`metadata.json has an unusable normalization ${JSON.stringify(recorded)}`);
  }
  return { mean, std };
}

/** A registry version's tfjs layers model, read as bytes and checked like a published one (the caller disposes it). */
export async function loadLayersModel(registry: ModelRegistry, version: string): Promise<tf.LayersModel> {
  const [modelJsonBytes, weights] = await Promise.all([registry.readArtifact(version, MODEL_JSON), registry.readArtifact(version, WEIGHTS_BIN)]);
  return layersModelFrom(checkModelFiles(`${version}/${MODEL_JSON}`, modelJsonBytes, weights.byteLength), weights);
}

export class LoadedModel {
  readonly info: ModelInfo;
  readonly normalization: Normalization;
  private readonly batcher: MicroBatcher<Float32Array, Float32Array>;
  private leases = 0;
  private retired = false;
  private disposed = false;
  private readonly runner: Runner;

  private constructor(metadata: ServingMetadata, runner: Runner, batching: MicroBatcherOptions, onBatch?: (version: string, size: number) => void) {
    this.runner = runner;
    this.info = { model: metadata.model ?? metadata.dataset, version: metadata.version, dataset: metadata.dataset, testAccuracy: metadata.testAccuracy };
    this.normalization = normalizationOf(metadata);
    // One batch per inference thread in flight; the others queue, so each next batch takes the oldest images.
    const maxInFlight = 'pool' in runner ? runner.pool.size : undefined;
    const { maxBatch, maxWaitMs } = batching;
    // Waiting images are bounded (64 batches, under a second at full speed): overload is a 503 with Retry-After, not an unbounded wait.
    const maxQueued = 64 * maxBatch;
    this.batcher = new MicroBatcher((inputs) => this.forward(inputs), { maxBatch, maxWaitMs, maxQueued, ...(maxInFlight ? { maxInFlight } : {}) }, (size) =>
      onBatch?.(this.info.version, size),
    );
  }

  /** Loads a registry version. */
  static async load(
    registry: ModelRegistry,
    metadata: ModelVersion,
    batching: ForwardOptions,
    onBatch?: (version: string, size: number) => void,
  ): Promise<LoadedModel> {
    const model = await loadLayersModel(registry, metadata.version).catch((error: unknown) => {
      throw new ModelLoadError(metadata.version, error);
    });
    return LoadedModel.fromLayersModel(model, metadata, batching, onBatch);
  }

  /** Folds a seed-net layers model (then disposes it) and runs one warm-up pass, so the first request is not the slow one. */
  static async fromLayersModel(
    model: tf.LayersModel,
    metadata: ServingMetadata,
    batching: ForwardOptions,
    onBatch?: (version: string, size: number) => void,
  ): Promise<LoadedModel> {
    let net: InferenceNet | undefined;
    let pooled: number | undefined;
    const { pool } = batching;
    try {
      net = InferenceNet.fold(seedNetWeights(model));
      let runner: Runner = { net };
      if (pool) {
        pooled = await pool.load(net.layout, net.foldedWeights());
        runner = { pool, id: pooled };
        net.dispose();
        net = undefined;
      }
      const loaded = new LoadedModel(metadata, runner, batching, onBatch);
      // The warm-up doubles as a check: a model that loads but computes garbage is refused here.
      const [probabilities] = await loaded.forward([new Float32Array(IMAGE_PIXELS)]);
      const sum = probabilities!.reduce((a, b) => a + b, 0);
      if (!probabilities!.every(Number.isFinite) || Math.abs(sum - 1) > 1e-3) {
        throw new Error(`a forward pass on a blank image gave ${Array.from(probabilities!).join(', ')}, not probabilities`);
      }
      return loaded;
    } catch (error) {
      net?.dispose();
      if (pooled !== undefined) pool?.unload(pooled);
      throw new ModelLoadError(metadata.version, error);
    } finally {
      model.dispose();
    }
  }

  /** Images queued or in a forward pass (metrics). */
  get pendingImages(): number {
    return this.batcher.inFlight;
  }

  acquire(): void {
    if (this.disposed) throw new Error(`model ${this.info.version} is already disposed`);
    this.leases++;
  }

  release(): void {
    this.leases--;
    this.disposeIfUnused();
  }

  /** No new leases will be taken; dispose once the ones held are released. */
  retire(): void {
    this.retired = true;
    this.disposeIfUnused();
  }

  /** Pixel values 0–255 → the input this model was trained on. */
  normalize(pixels: ArrayLike<number>): Float32Array {
    return normalisePixels(pixels, this.normalization);
  }

  /** Classifies normalised 28×28 inputs; concurrent calls share forward passes. */
  async predict(inputs: Float32Array[]): Promise<Prediction[]> {
    const probabilities = await this.batcher.submitMany(inputs);
    return probabilities.map((p) => {
      const values = Array.from(p);
      const label = values.indexOf(Math.max(...values));
      return { label, confidence: values[label]!, probabilities: values };
    });
  }

  private async forward(inputs: Float32Array[]): Promise<Float32Array[]> {
    const batch = new Float32Array(inputs.length * IMAGE_PIXELS);
    inputs.forEach((input, i) => batch.set(input, i * IMAGE_PIXELS));
    const values = await this.probabilities(batch, inputs.length);
    return inputs.map((_, i) => values.slice(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
  }

  /** Softmax outputs [count × classes] of a batch [count × 784], on the inference threads or here. */
  private async probabilities(batch: Float32Array, count: number): Promise<Float32Array> {
    const { runner } = this;
    if ('pool' in runner) return runner.pool.run(runner.id, batch, count);
    const probabilities = tf.tidy(() => tf.softmax(runner.net.logits(tf.tensor4d(batch, [count, ...INPUT_SHAPE]))));
    try {
      return (await probabilities.data()) as Float32Array;
    } finally {
      probabilities.dispose();
    }
  }

  private disposeIfUnused(): void {
    if (!this.retired || this.leases > 0 || this.disposed) return;
    this.disposed = true;
    // Leases cover every submit, so the batcher is idle here; waiting costs nothing and guards the invariant.
    const { runner } = this;
    void this.batcher.idle().then(() => ('pool' in runner ? runner.pool.unload(runner.id) : runner.net.dispose()));
  }
}
