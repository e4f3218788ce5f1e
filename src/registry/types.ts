// The registry's contract. FileSystemRegistry implements it over MODEL_DIR; an
// object store (S3, GCS) can implement the same interface later without any
// caller changing, which is why artifacts are read as bytes, not as paths.
import { z } from 'zod';
import { DATASET_NAMES } from '../data/types.ts';
import { ARCHITECTURE_NAMES } from '../model/seed-net.ts';
import { PRESET_NAMES, SCHEDULE_NAMES, type EpochMetrics, type Recipe } from '../training/types.ts';

export const ARTIFACT_NAMES = ['model.json', 'weights.bin'] as const;
export type ArtifactName = (typeof ARTIFACT_NAMES)[number];

// Versions trained before presets existed used the seed recipe: missing fields take its values.
const RECIPE_SCHEMA = z.looseObject({
  preset: z.enum(PRESET_NAMES).default('seed'),
  architecture: z.enum(ARCHITECTURE_NAMES).default('seed'),
  nesterov: z.boolean().default(false),
  weightDecay: z.number().min(0).default(0),
  labelSmoothing: z.number().min(0).default(0),
  schedule: z.enum(SCHEDULE_NAMES).default('constant'),
  augmentation: z
    .object({ rotationDegrees: z.number(), shiftPixels: z.number(), scaleFraction: z.number() })
    .nullable()
    .default(null),
  dataset: z.enum(DATASET_NAMES),
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  learningRate: z.number().positive(),
  momentum: z.number().min(0),
  seed: z.number().int().min(0),
  limit: z.number().int().positive().optional(),
  targetAccuracy: z.number().positive().max(1).optional(),
}) satisfies z.ZodType<Recipe>;

const EPOCH_METRICS_SCHEMA = z.looseObject({
  epoch: z.number().int().positive(),
  trainLoss: z.number(),
  trainAccuracy: z.number(),
  testLoss: z.number(),
  testAccuracy: z.number(),
  seconds: z.number(),
  imagesPerSecond: z.number(),
  engine: z.string(),
}) satisfies z.ZodType<EpochMetrics>;

/**
 * metadata.json of a version. Fields beyond these (whatever training adds) are
 * kept as they are, so the registry need not change when training records more.
 */
export const MODEL_METADATA_SCHEMA = z.looseObject({
  version: z.string(),
  /** The training job that produced it; null for models published by hand. */
  jobId: z.string().nullable(),
  dataset: z.enum(DATASET_NAMES),
  recipe: RECIPE_SCHEMA,
  trainableParams: z.number().int().positive(),
  /** One entry per epoch trained, in order. */
  metrics: z.array(EPOCH_METRICS_SCHEMA),
  /** Test accuracy after the final epoch, 0..1. */
  testAccuracy: z.number().min(0).max(1),
  /** Engine label the model was trained with (e.g. "wasm-simd"). */
  engine: z.string(),
  /** ISO 8601 time of publishing. */
  created: z.iso.datetime(),
});
export type ModelMetadata = z.infer<typeof MODEL_METADATA_SCHEMA>;

/** What a caller may tell publish; the registry assigns version and created itself. */
export type PublishMetadata = Partial<Omit<ModelMetadata, 'version' | 'created'>>;

/** A version as the registry reports it: its metadata plus whether `latest` points at it. */
export type ModelVersion = ModelMetadata & { latest: boolean };

export interface ModelRegistry {
  /**
   * Copies a training output directory (model.json, weights.bin, metadata.json) into
   * a new immutable version, atomically, and moves `latest` to it. `metadata`
   * overrides or completes what sourceDir/metadata.json says (e.g. `{ jobId }`).
   * Throws InvalidModelError when the directory or the merged metadata is unusable.
   */
  publish(sourceDir: string, metadata?: PublishMetadata): Promise<ModelVersion>;
  /** All versions, newest first. */
  list(): Promise<ModelVersion[]>;
  /** One version; `version` may be "latest". Throws InvalidVersionError / ModelNotFoundError. */
  get(version: string): Promise<ModelVersion>;
  /** The version `latest` points at, or undefined when nothing is published. */
  latest(): Promise<ModelVersion | undefined>;
  /** Points `latest` at an existing version. */
  promote(version: string): Promise<ModelVersion>;
  /** The bytes of one artifact of a version (`version` may be "latest"). */
  readArtifact(version: string, name: ArtifactName): Promise<Buffer>;
}
