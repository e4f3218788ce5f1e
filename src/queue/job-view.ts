// Turns a BullMQ job into the job the API shows: BullMQ's states folded into
// queued | active | completed | failed | cancelled, progress and metrics unpacked.
import type { Job, JobState as BullState } from 'bullmq';
import { modelNameOf, readProgress, type JobData, type JobResult, type JobState, type JobView } from './schema.ts';

/** A cancelled job's record (hash `cancelled`); a queued job that was removed keeps its last view here. */
export interface CancelRecord {
  cancelledAt: number;
  snapshot?: JobView;
}

/** The failedReason of a job the worker stopped because it was cancelled. */
export const CANCELLED_REASON = 'cancelled';

export function toJobState(state: BullState | 'unknown', cancelled: boolean): JobState {
  switch (state) {
    case 'active':
      return 'active';
    case 'completed':
      return 'completed';
    case 'failed':
      return cancelled ? 'cancelled' : 'failed';
    default:
      // waiting, delayed (retry back-off), prioritized, waiting-children; unknown: mid-removal
      return cancelled && state === 'unknown' ? 'cancelled' : 'queued';
  }
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export function toJobView(job: Job<JobData, JobResult>, bullState: BullState | 'unknown', cancel: CancelRecord | undefined): JobView {
  const state = toJobState(bullState, cancel !== undefined || job.failedReason === CANCELLED_REASON);
  const progress = readProgress(job.progress);
  const result = state === 'completed' ? (job.returnvalue as JobResult | null) : null;
  const request = job.data.request;
  return {
    id: job.id!,
    name: request.name ?? null,
    state,
    request,
    progress: progress.batch,
    metrics: result?.metrics ?? progress.metrics,
    lossCurve: progress.lossCurve,
    engine: result?.engine ?? progress.engine,
    attempts: job.attemptsStarted,
    resumedFromEpoch: progress.resumedFromEpoch,
    modelVersion: result?.modelVersion ?? null,
    model: result?.model ?? modelNameOf(request),
    promoted: result?.promoted ?? null,
    promotion: result?.promotion ?? null,
    error: errorOf(state, job),
    createdAt: iso(job.timestamp)!,
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn) ?? (state === 'cancelled' && cancel ? iso(cancel.cancelledAt) : null),
  };
}

/**
 * A failed job's reason; while a job waits for or runs its retry, the error of the
 * attempt before (BullMQ keeps failedReason until the job completes or fails again).
 */
function errorOf(state: JobState, job: Job<JobData, JobResult>): string | null {
  if (state === 'failed') return job.failedReason || 'failed';
  if (state === 'queued' || state === 'active') return job.failedReason || null;
  return null;
}

export const isFinished = (state: JobState) => state === 'completed' || state === 'failed' || state === 'cancelled';
