// One model version in memory, ready to predict: its weights folded for inference
// (fold.ts), its own normalisation (from metadata.json) and its own micro-batcher.
// Forward passes (folded-forward.mjs, WebAssembly SIMD) run on the inference threads when
// there are any (inference-pool.ts), else on the event loop. Requests hold a
// lease while they use it; a retired model (swapped out or evicted) is disposed
// when the last lease ends, so requests in flight finish on the model they started with.
// No tfjs here: models are folded from their files in plain arithmetic.
import type * as tf from '@tensorflow/tfjs';
import { DATASET_SOURCES } from '../data/datasets.ts';
import type { DatasetName } from '../data/types.ts';
import { MODEL_JSON, WEIGHTS_BIN } from '../model/artifacts.ts';
import type { ModelRegistry, ModelVersion } from '../registry/types.ts';
import { ModelLoadError } from './errors.ts';
import { foldModelFiles, foldedOf, type FoldedModel } from './fold.ts';
import { FoldedNet } from './folded-forward.mjs';
import type { InferencePool } from './inference-pool.ts';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher.ts';
import { IMAGE_PIXELS, NUM_CLASSES, normalisationTable, normaliseInto, type Normalization } from '../model/spec.ts';

/** One 28×28 image's pixel values 0–255, row-major (decoded bytes, or JSON numbers). */
export type Pixels = Uint8Array | Float32Array;

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

/** Where a model's folded weights live: a net on this thread, or copies in the inference threads. */
type Runner = { net: FoldedNet } | { pool: InferencePool; id: number };

export function normalizationOf(metadata: ServingMetadata): Normalization {
  const recorded = metadata.normalization;
  const { mean, std } = recorded ?? DATASET_SOURCES[metadata.dataset];
  if (typeof mean !== 'number' || typeof std !== 'number' || !Number.isFinite(mean) || !(std > 0)) {
    throw new Error(`metadata.json has an unusable normalization ${JSON.stringify(recorded)}`);
  }
  return { mean, std };
}

/** A registry version's files, read as bytes, checked like a published one and folded for serving. */
export async function loadFoldedModel(registry: ModelRegistry, version: string): Promise<FoldedModel> {
  const [modelJsonBytes, weights] = await Promise.all([registry.readArtifact(version, MODEL_JSON), registry.readArtifact(version, WEIGHTS_BIN)]);
  return foldModelFiles(`${version}/${MODEL_JSON}`, modelJsonBytes, weights);
}

export class LoadedModel {
  readonly info: ModelInfo;
  readonly normalization: Normalization;
  /** normalization as a table for uint8 pixels, made once rather than per image. */
  private readonly table: Float32Array;
  private readonly batcher: MicroBatcher<Pixels, Float32Array>;
  private leases = 0;
  private retired = false;
  private disposed = false;
  private readonly runner: Runner;
  private markDisposed!: () => void;
  /** Resolves once the model is retired and disposed: its last lease released, its last batch done. */
  readonly disposal = new Promise<void>((resolve) => (this.markDisposed = resolve));

  private constructor(metadata: ServingMetadata, runner: Runner, batching: MicroBatcherOptions, onBatch?: (version: string, size: number) => void) {
    this.runner = runner;
    this.info = { model: metadata.model ?? metadata.dataset, version: metadata.version, dataset: metadata.dataset, testAccuracy: metadata.testAccuracy };
    this.normalization = normalizationOf(metadata);
    this.table = normalisationTable(this.normalization);
    // As many batches in flight as the inference threads hold; the others queue, so each next batch takes the oldest images.
    const maxInFlight = 'pool' in runner ? runner.pool.capacity : undefined;
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
    const folded = await loadFoldedModel(registry, metadata.version).catch((error: unknown) => {
      throw new ModelLoadError(metadata.version, error);
    });
    return LoadedModel.fromFolded(folded, metadata, batching, onBatch);
  }

  /** Serves a seed-net layers model (disposed here once folded). */
  static async fromLayersModel(
    model: tf.LayersModel,
    metadata: ServingMetadata,
    batching: ForwardOptions,
    onBatch?: (version: string, size: number) => void,
  ): Promise<LoadedModel> {
    let folded: FoldedModel;
    try {
      folded = foldedOf(model);
    } catch (error) {
      throw new ModelLoadError(metadata.version, error);
    } finally {
      model.dispose();
    }
    return LoadedModel.fromFolded(folded, metadata, batching, onBatch);
  }

  /** Puts folded weights where forward passes run and runs one warm-up pass, so the first request is not the slow one. */
  private static async fromFolded(
    folded: FoldedModel,
    metadata: ServingMetadata,
    batching: ForwardOptions,
    onBatch?: (version: string, size: number) => void,
  ): Promise<LoadedModel> {
    const { pool } = batching;
    let runner: Runner | undefined;
    try {
      runner = pool
        ? { pool, id: await pool.load(folded.layout, folded.weights) }
        : { net: new FoldedNet(folded.layout, folded.weights) };
      const loaded = new LoadedModel(metadata, runner, batching, onBatch);
      // The warm-up doubles as a check: a model that loads but computes garbage is refused here.
      const [probabilities] = await loaded.forward([new Uint8Array(IMAGE_PIXELS)]);
      const sum = probabilities!.reduce((a, b) => a + b, 0);
      if (!probabilities!.every(Number.isFinite) || Math.abs(sum - 1) > 1e-3) {
        throw new Error(`a forward pass on a blank image gave ${Array.from(probabilities!).join(', ')}, not probabilities`);
      }
      return loaded;
    } catch (error) {
      if (runner && 'pool' in runner) runner.pool.unload(runner.id);
      throw new ModelLoadError(metadata.version, error);
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

  /** Classifies 28×28 images of pixel values 0–255 (normalised the way this model was trained); concurrent calls share forward passes. */
  async predict(images: Pixels[]): Promise<Prediction[]> {
    const probabilities = await this.batcher.submitMany(images);
    return probabilities.map((p) => {
      // A plain loop: Array.from walks a typed array through its iterator, an object per element.
      const values: number[] = [];
      for (let k = 0; k < p.length; k++) values.push(p[k]!);
      let label = 0;
      for (let k = 1; k < values.length; k++) if (values[k]! > values[label]!) label = k;
      return { label, confidence: values[label]!, probabilities: values };
    });
  }

  private async forward(images: Pixels[]): Promise<Float32Array[]> {
    const values = await this.probabilities(images);
    return images.map((_, i) => values.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
  }

  /** Writes the images, normalised, one after another into `batch` (the network's input; no per-image copies). */
  private writeBatch(batch: Float32Array, images: Pixels[]): void {
    images.forEach((pixels, i) => normaliseInto(batch, i * IMAGE_PIXELS, pixels, pixels instanceof Uint8Array ? this.table : this.normalization));
  }

  /** Softmax outputs [images × classes], on the inference threads or here. */
  private async probabilities(images: Pixels[]): Promise<Float32Array> {
    const { runner } = this;
    if ('pool' in runner) return runner.pool.run(runner.id, images.length, (batch) => this.writeBatch(batch, images));
    const batch = new Float32Array(images.length * IMAGE_PIXELS);
    this.writeBatch(batch, images);
    const probabilities = new Float32Array(images.length * NUM_CLASSES);
    runner.net.probabilities(batch, images.length, probabilities);
    return probabilities;
  }

  private disposeIfUnused(): void {
    if (!this.retired || this.leases > 0 || this.disposed) return;
    this.disposed = true;
    // Leases cover every submit, so the batcher is idle here; waiting costs nothing and guards the invariant.
    const { runner } = this;
    // A net on this thread is garbage once unreferenced; the threads' copies are dropped by message.
    void this.batcher.idle().then(() => {
      if ('pool' in runner) runner.pool.unload(runner.id);
      this.markDisposed();
    });
  }
}
