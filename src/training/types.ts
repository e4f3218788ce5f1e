import type { DatasetName, DownloadOptions } from '../data/types.ts';
import type { EngineName } from '../engine/types.ts';
import type { ArchitectureName } from '../model/spec.ts';

export const PRESET_NAMES = ['seed', 'fast'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const SCHEDULE_NAMES = ['constant', 'one-cycle'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

/** Random affine augmentation, drawn per image from a (seed, epoch, batch) stream (augment.ts). */
export interface Augmentation {
  /** Rotation uniform in ±degrees. */
  rotationDegrees: number;
  /** Shift uniform in ±pixels, each axis. */
  shiftPixels: number;
  /** Scale uniform in 1 ± this fraction. */
  scaleFraction: number;
}

/** A training recipe; PRESETS (recipe.ts) hold the named ones (`seed` is the product brief's, README.md "Product brief"). */
export interface Recipe {
  /** The preset the other fields started from (overrides may follow). */
  preset: PresetName;
  architecture: ArchitectureName;
  dataset: DatasetName;
  epochs: number;
  batchSize: number;
  /** SGD learning rate; the peak for the one-cycle schedule. */
  learningRate: number;
  momentum: number;
  nesterov: boolean;
  /** L2 penalty added to the conv kernels' gradients (PyTorch SGD's weight_decay); BN parameters are not decayed. */
  weightDecay: number;
  /** Cross-entropy target smoothing ε: targets (1−ε)·onehot + ε/10. */
  labelSmoothing: number;
  schedule: ScheduleName;
  /** null: the images as they are. */
  augmentation: Augmentation | null;
  /** Seed for weight init, shuffling and dropout; same seed → same run. */
  seed: number;
  /** Train on the first N images only (smoke tests). */
  limit?: number;
  /** Stop after the first epoch whose test accuracy reaches this fraction. */
  targetAccuracy?: number;
}

/** Per-epoch metrics: exactly the keys `digits train --json` prints (and the PyTorch reference). */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
  engine: string;
}

export interface BatchProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** Fraction of the whole run done, 0..1. */
  fraction: number;
  etaSeconds: number;
  /** Mean loss of this epoch's batches so far. */
  runningLoss: number;
  /** Mean loss of this batch alone (what the loss curve of a job plots). */
  loss: number;
}

export interface TrainOptions {
  /** Overrides of SEED_RECIPE (recipe.ts); ignored when resuming (the checkpoint has the recipe). */
  recipe: Partial<Recipe>;
  /** Local data directory (see LoadDatasetOptions.dataDir). */
  dataDir?: string;
  cacheDir?: string;
  /** Download settings when the data set is fetched (see LoadDatasetOptions.download). */
  download?: DownloadOptions;
  /** Run directory: checkpoint/ is written here after every epoch, model/ at the end. */
  outDir: string;
  /** Continue from outDir's checkpoint when there is one. */
  resume?: boolean;
  engine?: EngineName | 'auto';
  signal?: AbortSignal;
  /** Called once the engine is ready, before the data set loads (progress can name the engine from the start). */
  onStart?: (info: { engine: string }) => void;
  onBatch?: (progress: BatchProgress) => void;
  onEpoch?: (metrics: EpochMetrics) => void;
  /** Extra fields to store in metadata.json (e.g. jobId). */
  metadata?: Record<string, unknown>;
}

export interface TrainResult {
  metrics: EpochMetrics[];
  /** Directory with model.json, weights.bin and metadata.json; absent when cancelled. */
  modelDir?: string;
  engine: string;
  /** 'completed': all epochs ran; 'target-reached': stopped early at targetAccuracy; 'cancelled': aborted. */
  outcome: 'completed' | 'target-reached' | 'cancelled';
}
