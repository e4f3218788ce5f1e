// What a training job is, on the wire and in Redis.
import { z } from 'zod';
import { DATASET_NAMES } from '../data/types.ts';
import { MODEL_NAME_RULE, PROMOTION_POLICIES, isModelName } from '../registry/model-name.ts';
import { ARCHITECTURE_NAMES } from '../model/architectures.ts';
import { DEFAULT_PRESET, PRESETS, resolveRecipe } from '../training/recipe.ts';
import { PRESET_NAMES, type BatchProgress, type EpochMetrics, type Recipe } from '../training/types.ts';

/**
 * POST /v1/jobs body. `recipe` names a preset (default DEFAULT_PRESET); every other field is
 * optional and defaults to that preset's value, filled in here so the stored request says
 * what runs. Unknown keys are errors (typos).
 */
export const JobRequestSchema = z
  .strictObject({
    recipe: z.enum(PRESET_NAMES).default(DEFAULT_PRESET),
    architecture: z.enum(ARCHITECTURE_NAMES).optional(),
    dataset: z.enum(DATASET_NAMES).optional(),
    epochs: z.int().min(1).max(50).optional(),
    batchSize: z.int().min(1).max(60_000).optional(),
    learningRate: z.number().gt(0).max(10).optional(),
    momentum: z.number().min(0).lt(1).optional(),
    seed: z.int().min(0).max(2 ** 31 - 1).optional(),
    limit: z.int().min(1).max(60_000).optional(),
    targetAccuracy: z.number().gt(0).max(1).optional(),
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

/** BullMQ job progress: the latest batch, all epochs so far, and where this attempt started. */
export interface JobProgressRecord {
  batch: BatchProgress | null;
  metrics: EpochMetrics[];
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
  return { batch: null, metrics: [], engine: null, resumedFromEpoch: null };
}

/** Reads job.progress defensively: BullMQ initialises it to 0. */
export function readProgress(raw: unknown): JobProgressRecord {
  if (!raw || typeof raw !== 'object' || !Array.isArray((raw as JobProgressRecord).metrics)) return emptyProgress();
  const record = raw as Partial<JobProgressRecord>;
  return {
    batch: record.batch ?? null,
    metrics: record.metrics ?? [],
    engine: record.engine ?? null,
    resumedFromEpoch: record.resumedFromEpoch ?? null,
  };
}
