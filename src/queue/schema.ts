// What a training job is, on the wire and in Redis.
import { z } from 'zod';
import { MODEL_NAME_RULE, PROMOTION_POLICIES, isModelName } from '../registry/model-name.ts';
import { DEFAULT_PRESET, PRESETS, RECIPE_FIELDS, resolveRecipe } from '../training/recipe.ts';
import type { BatchProgress, EpochMetrics, Recipe } from '../training/types.ts';
import { emptyLossCurve, type LossCurve } from './loss-curve.ts';

/**
 * POST /v1/jobs body. `recipe` names a preset (default DEFAULT_PRESET); every other field is
 * optional and defaults to that preset's value, filled in here so the stored request says
 * what runs. Unknown keys are errors (typos).
 */
export const JobRequestSchema = z
  .strictObject({
    // The recipe fields a job may set, with the rules every recipe obeys (RECIPE_FIELDS).
    recipe: RECIPE_FIELDS.preset.default(DEFAULT_PRESET),
    architecture: RECIPE_FIELDS.architecture.optional(),
    dataset: RECIPE_FIELDS.dataset.optional(),
    epochs: RECIPE_FIELDS.epochs.optional(),
    batchSize: RECIPE_FIELDS.batchSize.optional(),
    learningRate: RECIPE_FIELDS.learningRate.optional(),
    momentum: RECIPE_FIELDS.momentum.optional(),
    seed: RECIPE_FIELDS.seed.optional(),
    limit: RECIPE_FIELDS.limit.optional(),
    targetAccuracy: RECIPE_FIELDS.targetAccuracy.optional(),
    name: z.string().trim().min(1).max(200).optional(),
    /** The model name to publish under (default: the data set's name). */
    model: z.string().refine(isModelName, { message: `expected ${MODEL_NAME_RULE}` }).optional(),
    /** Whether the new version becomes its name's default (default if-better). */
    promote: z.enum(PROMOTION_POLICIES).optional(),
    /** Never promote below this test accuracy. */
    minAccuracy: z.number().min(0).max(1).optional(),
  })
  .transform((request) => {
    const preset = PRESETS[request.recipe];
    return {
      ...request,
      architecture: request.architecture ?? preset.architecture,
      dataset: request.dataset ?? preset.dataset,
      epochs: request.epochs ?? preset.epochs,
      batchSize: request.batchSize ?? preset.batchSize,
      learningRate: request.learningRate ?? preset.learningRate,
      momentum: request.momentum ?? preset.momentum,
      seed: request.seed ?? preset.seed,
    };
  });
export type JobRequest = z.infer<typeof JobRequestSchema>;

export function recipeOf(request: JobRequest): Recipe {
  const { name: _name, model: _model, promote: _promote, minAccuracy: _minAccuracy, recipe, ...overrides } = request;
  // Requests stored before presets existed (no `recipe`) were for the seed recipe.
  return resolveRecipe({ ...overrides, preset: recipe ?? 'seed' });
}

/** The model name a job publishes under. */
export function modelNameOf(request: JobRequest): string {
  return request.model ?? request.dataset;
}

export const JOB_STATES = ['queued', 'active', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** BullMQ job data. */
export interface JobData {
  request: JobRequest;
}

/** BullMQ job progress: the latest batch, the loss curve and all epochs so far, and where this attempt started. */
export interface JobProgressRecord {
  batch: BatchProgress | null;
  metrics: EpochMetrics[];
  /** Per-batch training loss, bounded (loss-curve.ts). */
  lossCurve: LossCurve;
  /** The engine training runs on, from the moment it is ready. */
  engine: string | null;
  /** Epoch the latest attempt started at when it resumed from a checkpoint (> 1), else null. */
  resumedFromEpoch: number | null;
}

/** BullMQ job return value. */
export interface JobResult {
  modelVersion: string;
  /** The model name it was published under. */
  model?: string;
  /** Whether it became the name's default, and why (or why not). */
  promoted?: boolean;
  promotion?: string;
  metrics: EpochMetrics[];
  engine: string;
  outcome: 'completed' | 'target-reached';
}

/** A job as the API shows it. */
export interface JobView {
  id: string;
  name: string | null;
  state: JobState;
  request: JobRequest;
  /** The latest batch of the latest attempt (epoch, batch, fraction 0..1, etaSeconds, runningLoss). */
  progress: BatchProgress | null;
  metrics: EpochMetrics[];
  /** Per-batch training loss of the run so far, for its chart. */
  lossCurve: LossCurve;
  engine: string | null;
  /** How many times a worker has started it (a retry or a stall recovery adds one). */
  attempts: number;
  resumedFromEpoch: number | null;
  modelVersion: string | null;
  /** The model name the job publishes under. */
  model: string;
  /** Once completed: whether its version became the name's default; null before. */
  promoted: boolean | null;
  /** Once completed: why it was or was not promoted. */
  promotion: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export function emptyProgress(): JobProgressRecord {
  return { batch: null, metrics: [], lossCurve: emptyLossCurve(), engine: null, resumedFromEpoch: null };
}

/** Reads job.progress defensively: BullMQ initialises it to 0. */
export function readProgress(raw: unknown): JobProgressRecord {
  if (!raw || typeof raw !== 'object' || !Array.isArray((raw as JobProgressRecord).metrics)) return emptyProgress();
  const record = raw as Partial<JobProgressRecord>;
  return {
    batch: record.batch ?? null,
    metrics: record.metrics ?? [],
    // Records written before loss curves existed have none.
    lossCurve: record.lossCurve ?? emptyLossCurve(),
    engine: record.engine ?? null,
    resumedFromEpoch: record.resumedFromEpoch ?? null,
  };
}
