// GET /v1/jobs/:id/events as an async generator: the job's current view, then
// its progress, epochs and state changes (from the shared QueueEvents hub) until it ends.
import { JobNotFoundError } from './errors.ts';
import type { JobEventHub, QueueChange } from './job-events.ts';
import { isFinished } from './job-view.ts';
import type { JobView } from './schema.ts';
import type { BatchProgress, EpochMetrics } from '../training/types.ts';
import type { LossCurve } from './loss-curve.ts';

/** What GET /v1/jobs/:id/events sends, in order: the current job, then its changes until it ends. */
export type JobEvent =
  | { event: 'state'; data: JobView }
  | { event: 'progress'; data: { id: string; state: 'active'; progress: BatchProgress | null; engine: string | null; lossCurve: LossCurve } }
  | { event: 'epoch'; data: { id: string; metrics: EpochMetrics } }
  | { event: 'completed' | 'failed' | 'cancelled'; data: JobView };

/**
 * The job's events: its current view first, then progress, epochs and state
 * changes, ending with completed, failed or cancelled. Stops early when signal aborts.
 */
export async function* jobEvents(hub: JobEventHub, get: (id: string) => Promise<JobView>, id: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
  const changes: QueueChange[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  // Subscribe before reading the job, so nothing that happens in between is missed.
  const unsubscribe = hub.subscribe(id, (change) => {
    changes.push(change);
    notify();
  });
  signal.addEventListener('abort', notify);
  try {
    let job = await get(id);
    yield { event: 'state', data: job };
    let lastEpoch = job.metrics.at(-1)?.epoch ?? 0;
    while (!isFinished(job.state) && !signal.aborted) {
      const change = changes.shift();
      if (!change) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (change.type === 'progress') {
        for (const metrics of change.progress.metrics.filter((m) => m.epoch > lastEpoch)) {
          yield { event: 'epoch', data: { id, metrics } };
          lastEpoch = metrics.epoch;
        }
        // Also before the first batch: the engine is known from the start.
        const { batch, engine, lossCurve } = change.progress;
        yield { event: 'progress', data: { id, state: 'active', progress: batch, engine, lossCurve } };
        continue;
      }
      const previous = job.state;
      job = await get(id).catch((error: unknown) => {
        // A queued job that was cancelled is removed; its snapshot may be written a moment later.
        if (error instanceof JobNotFoundError && change.to === 'removed') return { ...job, state: 'cancelled' as const };
        throw error;
      });
      if (!isFinished(job.state) && job.state !== previous) yield { event: 'state', data: job };
    }
    if (isFinished(job.state)) yield { event: job.state as 'completed' | 'failed' | 'cancelled', data: job };
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', notify);
  }
}
