// The registry's contract. FileSystemRegistry implements it over MODEL_DIR; an
// object store (S3, GCS) can implement the same interface later without any
// caller changing, which is why artifacts are read as bytes, not as paths.
import { z } from 'zod';
import { DATASET_NAMES } from '../data/types.ts';
import { RECIPE_FIELDS } from '../training/recipe.ts';
import type { EpochMetrics, Recipe } from '../training/types.ts';
import type { PromotionPolicy } from './model-name.ts';

import type { ArtifactName } from '../model/artifacts.ts';
export { ARTIFACT_NAMES, type ArtifactName } from '../model/artifacts.ts';

// The recipe rules of training/recipe.ts (RECIPE_FIELDS). Versions trained before presets
// existed used the seed recipe: the fields added since take its values when missing.
const RECIPE_SCHEMA = z.looseObject({
  ...RECIPE_FIELDS,
  preset: RECIPE_FIELDS.preset.default('seed'),
  architecture: RECIPE_FIELDS.architecture.default('seed'),
  nesterov: RECIPE_FIELDS.nesterov.default(false),
  weightDecay: RECIPE_FIELDS.weightDecay.default(0),
  labelSmoothing: RECIPE_FIELDS.labelSmoothing.default(0),
  schedule: RECIPE_FIELDS.schedule.default('constant'),
  augmentation: RECIPE_FIELDS.augmentation.default(null),
  limit: RECIPE_FIELDS.limit.optional(),
  targetAccuracy: RECIPE_FIELDS.targetAccuracy.optional(),
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
const ARTIFACT_DIGEST_SCHEMA = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().min(0) });

export const MODEL_METADATA_SCHEMA = z.looseObject({
  version: z.string(),
  /** The model name the version belongs to (default: its data set's name). */
  model: z.string(),
  /** SHA-256 and size of each artifact, recorded at publish and checked on every read; absent on versions published before hashes were kept. */
  artifacts: z.object({ 'model.json': ARTIFACT_DIGEST_SCHEMA, 'weights.bin': ARTIFACT_DIGEST_SCHEMA }).optional(),
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

/** A version as the registry reports it: its metadata plus whether it is the default version of its model name. */
export type ModelVersion = ModelMetadata & { latest: boolean };

/** What became of a new version's bid to be its name's default. */
export interface Promotion {
  promoted: boolean;
  /** Why (e.g. "test accuracy 0.46 is below the default v0003-…'s 0.989"). */
  reason: string;
  /** The name's default before this publish, if any. */
  previous: string | null;
}

export interface PublishOptions {
  /** Default if-better: promote only when test accuracy ≥ the current default's (same name). */
  promote?: PromotionPolicy;
  /** Never promote below this test accuracy (0..1). */
  minAccuracy?: number;
  /** Runs the version (load + forward pass) before it may become a default; throws to refuse. */
  verify?: (version: ModelVersion) => Promise<void>;
}

export type PublishResult = ModelVersion & {
  /** True when this job had already published this version (a retry): nothing new was written. */
  reused: boolean;
  promotion: Promotion;
};

/** A model name with its default version and how many versions it has. */
export interface ModelSummary {
  name: string;
  defaultVersion: string | null;
  versions: number;
}

export interface ModelRegistry {
  /**
   * Copies a training output directory (model.json, weights.bin, metadata.json) into
   * a new immutable version, atomically, and moves `latest` to it. `metadata`
   * overrides or completes what sourceDir/metadata.json says (e.g. `{ jobId }`).
   * Throws InvalidModelError when the directory or the merged metadata is unusable.
   */
  publish(sourceDir: string, metadata?: PublishMetadata, options?: PublishOptions): Promise<PublishResult>;
  /** All versions, newest first; only those of `model` when given. */
  list(model?: string): Promise<ModelVersion[]>;
  /** Every model name, with its default version. */
  models(): Promise<ModelSummary[]>;
  /** One version; `version` may be "latest" (the default of DEFAULT_MODEL). Throws InvalidVersionError / ModelNotFoundError. */
  get(version: string): Promise<ModelVersion>;
  /** A version of a model name (UnknownModelError, ModelNotFoundError, VersionNotInModelError). */
  getVersion(model: string, version: string): Promise<ModelVersion>;
  /** The default version of a name (DEFAULT_MODEL when omitted), or undefined. */
  defaultVersion(model?: string): Promise<ModelVersion | undefined>;
  /** Legacy: the default version of DEFAULT_MODEL. */
  latest(): Promise<ModelVersion | undefined>;
  /** The version a job published, if it did (exactly-once publish looks here first). */
  findByJob(jobId: string): Promise<ModelVersion | undefined>;
  /**
   * Makes an existing version the default of its name, after checking its artifacts
   * against their SHA-256 and running `verify`. Throws PromotionRefusedError.
   */
  promote(version: string, options?: Pick<PublishOptions, 'verify'>): Promise<ModelVersion>;
  /** Removes a version that is not its name's default (VersionInUseError). */
  delete(version: string): Promise<ModelVersion>;
  /** The bytes of one artifact of a version (`version` may be "latest"), checked against its SHA-256 (CorruptArtifactError). */
  readArtifact(version: string, name: ArtifactName): Promise<Buffer>;
}
