// Fans BullMQ's queue events (one QueueEvents reader per API process) out to
// per-job listeners, for the Server-Sent Events stream of GET /v1/jobs/:id/events.
import { EventEmitter } from 'node:events';
import type { QueueEvents } from 'bullmq';
import { readProgress, type JobProgressRecord } from './schema.ts';

export type QueueChange =
  | { type: 'progress'; progress: JobProgressRecord }
  /** The job changed lists (active, waiting again after a retry or stall, completed, failed, removed). */
  | { type: 'moved'; to: string };

export class JobEventHub {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  constructor(events: QueueEvents) {
    events.on('progress', ({ jobId, data }) => this.emit(jobId, { type: 'progress', progress: readProgress(data) }));
    for (const to of ['active', 'waiting', 'delayed', 'completed', 'failed', 'removed'] as const) {
      events.on(to, ({ jobId }: { jobId: string }) => this.emit(jobId, { type: 'moved', to }));
    }
  }

  private emit(jobId: string, change: QueueChange): void {
    this.emitter.emit(jobId, change);
  }

  /** Calls listener for every change of one job until the returned function is called. */
  subscribe(jobId: string, listener: (change: QueueChange) => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }
}
