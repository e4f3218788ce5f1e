// Prometheus metrics (prom-client), one registry per app so tests can build many.
//   http_request_duration_seconds{method,route,status_code}  every request, by route pattern
//   digits_predictions_total{model_version}                  images classified
//   digits_predict_batch_size                                images per forward pass (micro-batching)
//   digits_queue_jobs{state}                                 training jobs by BullMQ state (waiting, active,
//                                                            delayed, completed, failed, …; read at scrape time)
//   digits_queue_up                                          1 when the queue could be read at the last scrape
//   digits_training_epoch{job_id}, digits_training_epochs{job_id},
//   digits_training_test_accuracy{job_id}                    progress of the jobs training right now
// plus prom-client's process metrics (CPU, memory, event-loop lag, GC).
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ActiveJobStats {
  id: string;
  /** The epoch being trained (1-based); 0 before the first batch. */
  epoch: number;
  epochs: number;
  /** Test accuracy after the last finished epoch, if any. */
  testAccuracy: number | null;
}

export interface QueueStats {
  /** Jobs by BullMQ state. */
  counts: Record<string, number>;
  active: ActiveJobStats[];
}

/** What /metrics reads from the training queue at scrape time (JobsService provides it). */
export interface QueueStatsSource {
  stats(): Promise<QueueStats>;
}

/** Latency buckets for an API whose predictions take milliseconds and whose artifacts may take longer. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly predictions: Counter<'model_version'>;
  readonly batchSize: Histogram;
  /** One queue read per scrape, shared by the gauges that need it (undefined: the queue could not be read). */
  private scrape: Promise<QueueStats | undefined> | undefined;

  constructor(queue?: QueueStatsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.predictions = new Counter({
      name: 'digits_predictions_total',
      help: 'Images classified, by model version',
      labelNames: ['model_version'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'digits_predict_batch_size',
      help: 'Images per forward pass (micro-batches of concurrent requests)',
      buckets: BATCH_BUCKETS,
      registers,
    });
    if (!queue) return;

    const stats = () => (this.scrape ??= queue.stats().catch(() => undefined));
    new Gauge({
      name: 'digits_queue_up',
      help: '1 when the training queue (Redis) could be read at this scrape, else 0',
      registers,
      async collect() {
        this.set((await stats()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'digits_queue_jobs',
      help: 'Training jobs by queue state (completed and failed count the jobs Redis still keeps)',
      labelNames: ['state'],
      registers,
      async collect() {
        const current = await stats();
        this.reset();
        for (const [state, count] of Object.entries(current?.counts ?? {})) this.set({ state }, count);
      },
    });
    const perActiveJob = (name: string, help: string, value: (job: ActiveJobStats) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['job_id'],
        registers,
        async collect() {
          const current = await stats();
          this.reset();
          for (const job of current?.active ?? []) {
            const v = value(job);
            if (v !== null) this.set({ job_id: job.id }, v);
          }
        },
      });
    perActiveJob('digits_training_epoch', 'Epoch being trained by each active job', (job) => job.epoch);
    perActiveJob('digits_training_epochs', 'Epochs each active job will train', (job) => job.epochs);
    perActiveJob('digits_training_test_accuracy', 'Test accuracy after the last finished epoch of each active job', (job) => job.testAccuracy);
  }

  /** The Prometheus text exposition; the queue is read once per call, at scrape time. */
  async render(): Promise<string> {
    this.scrape = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.scrape = undefined;
    }
  }
}

/** Times every request by its route pattern (`/v1/jobs/:id`, not the URL, so label values stay few). */
export function useMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
