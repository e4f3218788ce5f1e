// The BullMQ processor for training jobs. It stays thin: training runs in a
// thread; this forwards progress to the job (throttled), and on success
// publishes the model to the registry, exactly once (publish-guard.ts), under the
// job's promotion policy, and announces it.
// Each job trains in <DATA_DIR>/runs/<jobId> with resume on, so a retried or
// stall-recovered job continues from its last checkpoint instead of epoch 1.
import { join } from 'node:path';
import { UnrecoverableError, WaitingError, type Job, type Processor } from 'bullmq';
import type { DatasetName } from '../data/types.ts';
import type { EngineName } from '../engine/types.ts';
import type { Logger } from '../lib/logger.ts';
import type { ModelVersion, PublishMetadata, PublishOptions, PublishResult } from '../registry/types.ts';
import type { PublishClaim, PublishRecord } from './publish-guard.ts';
import type { BatchProgress, EpochMetrics, TrainResult } from '../training/types.ts';
import { CANCELLED_REASON } from './job-view.ts';
import { LossCurveBuilder } from './loss-curve.ts';
import { modelNameOf, readProgress, recipeOf, type JobData, type JobProgressRecord, type JobResult } from './schema.ts';
import { trainInThread, type ThreadCallbacks, type ThreadTrainOptions } from './thread-runner.ts';

/** Abort reason used when the worker shuts down: the job goes back to the queue, not to cancelled. */
export const SHUTDOWN_REASON = 'worker shutting down';

export interface ProcessorDeps {
  /** DATA_DIR: run directories live in <dataDir>/runs/<jobId>; also the download cache. */
  dataDir: string;
  /** Local IDX directory for a data set (MNIST_DIR / FASHION_MNIST_DIR), if configured. */
  datasetDir: (dataset: DatasetName) => string | undefined;
  engine: EngineName | 'auto';
  /** Registry publish: idempotent per metadata.jobId, applies the promotion policy. */
  publish: (modelDir: string, metadata: PublishMetadata, options: PublishOptions) => Promise<PublishResult>;
  announce: (model: ModelVersion) => Promise<void>;
  isCancelled: (jobId: string) => Promise<boolean>;
  /** Atomic in Redis: refused when cancelled or when `token` no longer holds the job's lock. */
  claimPublish: (jobId: string, token: string | undefined) => Promise<PublishClaim>;
  recordPublished: (jobId: string, record: Omit<PublishRecord, 'state'>) => Promise<void>;
  publishRecord: (jobId: string) => Promise<PublishRecord | undefined>;
  logger: Logger;
  /** How often the cancel mark is polled besides the pub/sub message (default 5000 ms). */
  cancelPollMs?: number;
  /** Least time between two progress writes to Redis (default 500 ms); epochs are written at once. */
  progressIntervalMs?: number;
  /** Replaces trainInThread (tests). */
  train?: (options: ThreadTrainOptions, callbacks: ThreadCallbacks) => Promise<TrainResult>;
}

/**
 * Errors that every attempt of the job would meet again (by name: the training thread
 * sends its error's name across, and the classes live in modules this process need not
 * load). The job fails at once with the message instead of sitting in the queue through
 * its retries. Anything else (Redis, a lost lock, a crashed thread) is retried.
 */
export const PERMANENT_ERROR_NAMES: ReadonlySet<string> = new Set([
  'DatasetUnavailableError', // no mirror could deliver the data set (offline, or gone), after the download's own retries
  'ChecksumMismatchError', // every mirror serves wrong bytes
  'DatasetFilesError', // the configured local data directory is missing or incomplete
  'IdxFormatError', // a data file is not IDX
  'RecipeError', // the request's recipe cannot be trained
  'ResumeMismatchError', // the run directory's checkpoint is for another recipe
  'CheckpointError', // the run directory's checkpoint cannot be read
]);

export function isPermanentError(error: unknown): boolean {
  return error instanceof Error && PERMANENT_ERROR_NAMES.has(error.name);
}

export function runDirectory(dataDir: string, jobId: string): string {
  return join(dataDir, 'runs', jobId);
}

/** Keeps the job's progress record and writes it to Redis at most every intervalMs. */
class ProgressReporter {
  private readonly record: JobProgressRecord;
  /** Sees every batch; the record gets its (bounded) snapshot when written. */
  private readonly lossCurve: LossCurveBuilder;
  private lastWrite = 0;
  private started = false;
  private writing: Promise<void> = Promise.resolve();
  private readonly job: Job<JobData, JobResult>;
  private readonly intervalMs: number;
  private readonly logger: Logger;

  constructor(job: Job<JobData, JobResult>, intervalMs: number, logger: Logger) {
    this.job = job;
    this.intervalMs = intervalMs;
    this.logger = logger;
    // Metrics of earlier attempts stay; the batch and resume marker are this attempt's.
    this.record = { ...readProgress(job.progress), batch: null, resumedFromEpoch: null };
    this.lossCurve = new LossCurveBuilder(this.record.lossCurve);
  }

  start = ({ engine }: { engine: string }): void => {
    this.record.engine = engine;
    this.write();
  };

  batch = (progress: BatchProgress): void => {
    if (!this.started) {
      this.started = true;
      // Epochs from this one on are trained again; what an earlier attempt reported for them is stale.
      this.record.metrics = this.record.metrics.filter((m) => m.epoch < progress.epoch);
      this.lossCurve.dropAfter(progress.epoch - 1);
      if (progress.epoch > 1) {
        this.record.resumedFromEpoch = progress.epoch;
        this.logger.info({ jobId: this.job.id, epoch: progress.epoch }, 'resuming from checkpoint');
        // The job log is a courtesy for BullMQ dashboards; the line above already logged the resume.
        void this.job.log(`attempt ${this.job.attemptsStarted} resumed from checkpoint at epoch ${progress.epoch}`).catch(() => {});
      }
    }
    this.record.batch = progress;
    this.lossCurve.add(progress.epoch - 1 + progress.batch / progress.batches, progress.loss);
    // An epoch's last batch is always written: the evaluation after it can take a while, and the
    // record should say training is done meanwhile (one extra write per epoch).
    if (progress.batch === progress.batches || Date.now() - this.lastWrite >= this.intervalMs) this.write();
  };

  epoch = (metrics: EpochMetrics): void => {
    this.record.metrics = [...this.record.metrics.filter((m) => m.epoch < metrics.epoch), metrics];
    this.record.engine = metrics.engine;
    this.write();
  };

  private write(): void {
    this.lastWrite = Date.now();
    const snapshot = structuredClone({ ...this.record, lossCurve: this.lossCurve.snapshot() });
    // Chained so writes land in order; a failed write (Redis blip) must not fail the training.
    this.writing = this.writing.then(() =>
      this.job.updateProgress(snapshot).catch((error: Error) => this.logger.warn({ err: error, jobId: this.job.id }, 'progress not saved')),
    );
  }

  async flush(): Promise<void> {
    this.write();
    await this.writing;
  }
}

export function createTrainingProcessor(deps: ProcessorDeps): Processor<JobData, JobResult> {
  const trainer = deps.train ?? trainInThread;
  // Three parameters: BullMQ passes an AbortSignal only to processors that declare one.
  return async (job, token, signal) => {
    const jobId = job.id!;
    const log = deps.logger.child({ jobId });
    // A retry of a job that already published (its completion was lost): finish with that version, train nothing.
    const earlier = await deps.publishRecord(jobId);
    if (earlier?.state === 'published' && earlier.version) {
      log.info({ version: earlier.version }, 'already published by an earlier attempt; completing with that version');
      return { ...resultOf(earlier), metrics: readProgress(job.progress).metrics, engine: readProgress(job.progress).engine ?? 'unknown', outcome: 'completed' };
    }
    if (earlier === undefined && (await deps.isCancelled(jobId))) throw new UnrecoverableError(CANCELLED_REASON);
    const recipe = recipeOf(job.data.request);
    const reporter = new ProgressReporter(job, deps.progressIntervalMs ?? 500, log);
    // Cancel requests arrive by pub/sub (worker.cancelJob aborts `signal`); polling the
    // mark as well covers a message missed while the subscriber was reconnecting.
    const polled = new AbortController();
    const poll = setInterval(() => {
      deps.isCancelled(jobId).then((yes) => yes && polled.abort(CANCELLED_REASON), () => {});
    }, deps.cancelPollMs ?? 5000);
    const stop = signal ? AbortSignal.any([signal, polled.signal]) : polled.signal;
    log.info({ recipe, attempt: job.attemptsStarted }, 'training started');
    let result: TrainResult | undefined;
    try {
      result = await trainer(
        {
          recipe,
          outDir: runDirectory(deps.dataDir, jobId),
          dataDir: deps.datasetDir(recipe.dataset),
          cacheDir: deps.dataDir,
          engine: deps.engine,
          metadata: { jobId },
        },
        { signal: stop, onStart: reporter.start, onBatch: reporter.batch, onEpoch: reporter.epoch },
      );
    } catch (error) {
      // Stopped before any batch (e.g. while loading data): still a cancellation or a shutdown.
      if (!stop.aborted) {
        if (!isPermanentError(error)) throw error;
        log.warn({ err: error }, 'training cannot succeed on any attempt; failing the job now');
        throw new UnrecoverableError((error as Error).message);
      }
    } finally {
      clearInterval(poll);
    }
    await reporter.flush();

    if (!result || result.outcome === 'cancelled') {
      if (stop.reason === SHUTDOWN_REASON && token) {
        // Back to the queue; the next worker resumes from the checkpoint.
        log.info('training interrupted by shutdown; job returned to the queue');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      log.info('training cancelled');
      throw new UnrecoverableError(CANCELLED_REASON);
    }

    if (!result.modelDir) throw new Error(`training of job ${jobId} ended (${result.outcome}) without a model directory`);
    // Training is over (evaluation and saving included); a cancel that came meanwhile still wins.
    const claim = await deps.claimPublish(jobId, token);
    if (claim.outcome === 'cancelled') {
      log.info('cancelled after training; nothing published');
      throw new UnrecoverableError(CANCELLED_REASON);
    }
    if (claim.outcome === 'lock-lost') {
      // Another worker may own the job now (or will, once the stall is detected); it publishes, not us.
      log.warn('lost the job lock before publishing; not publishing (the job will be retried)');
      throw new Error(`worker lost the lock of job ${jobId} before publishing; the model was not published`);
    }
    const request = job.data.request;
    const model = await deps.publish(
      result.modelDir,
      { jobId, engine: result.engine, metrics: result.metrics, model: modelNameOf(request) },
      { promote: request.promote ?? 'if-better', ...(request.minAccuracy !== undefined ? { minAccuracy: request.minAccuracy } : {}) },
    );
    const record = { version: model.version, model: model.model, promoted: model.promotion.promoted, promotion: model.promotion.reason };
    await deps.recordPublished(jobId, record);
    log.info({ version: model.version, testAccuracy: model.testAccuracy, reused: model.reused, ...model.promotion }, 'model published');
    if (!model.reused || model.promotion.promoted) {
      await deps.announce(model).catch((error: Error) => log.warn({ err: error }, 'model published but not announced'));
    }
    return { ...resultOf(record), metrics: result.metrics, engine: result.engine, outcome: result.outcome };
  };
}

function resultOf(record: Omit<PublishRecord, 'state'>): Pick<JobResult, 'modelVersion' | 'model' | 'promoted' | 'promotion'> {
  return { modelVersion: record.version!, model: record.model, promoted: record.promoted, promotion: record.promotion };
}
