// Prometheus metrics (prom-client), one registry per app so tests can build many.
//   http_request_duration_seconds{method,route,status_code}  every request, by route pattern
//   digits_predictions_total{model_version}                  images classified
//   digits_predict_batch_size                                images per forward pass (micro-batching)
//   digits_queue_jobs{state}                                 training jobs by BullMQ state (waiting, active,
//                                                            delayed, completed, failed, …; read at scrape time)
//   digits_queue_up                                          1 when the queue could be read at the last scrape
//   digits_training_epoch{job_id}, digits_training_epochs{job_id},
//   digits_training_test_accuracy{job_id}                    progress of the jobs training right now
//   digits_queue_depth                                       training jobs waiting for a worker (waiting, prioritized,
//                                                            delayed for a retry)
//   digits_job_duration_seconds{model,outcome}               start to end of each training job this process saw finish
//   digits_jobs_finished_total{model,outcome}                outcome: completed | failed | cancelled (cancelled before
//                                                            starting counts here but has no duration)
//   digits_model_info{model,version,accuracy}                1 per loaded model (latest and pinned versions)
//   digits_predict_duration_seconds{model}                   one predict request (v1 or v2), parsing to answer
//   digits_predict_queue_depth                               images waiting in or running through the micro-batchers
// plus prom-client's process metrics (CPU, memory, event-loop lag, GC), less the three
// nodejs_active_*_total gauges, which break the naming rules (`promtool check metrics`: a
// _total suffix is for counters); nodejs_active_{handles,requests,resources} by type remain.
// `model` is the model's name (today the data set it serves: mnist, fashion-mnist).
// Each API process counts the jobs it sees finish; with several API replicas, take max() across them.
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
  /** Finished jobs as this process sees them, for the job duration and outcome metrics. */
  onFinished?(listener: (job: FinishedJob) => void): () => void;
}

/** The part of a finished job's view the job metrics read. */
export interface FinishedJob {
  state: string;
  request: { dataset: string };
  startedAt: string | null;
  finishedAt: string | null;
}

/** What /metrics reads from serving at scrape time. */
export interface ServingStatsSource {
  /** Models loaded now (name, version, test accuracy 0–1). */
  loaded(): { name: string; version: string; testAccuracy: number }[];
  /** Images queued or in a forward pass, over all loaded models. */
  pendingImages(): number;
}

/** Prom-client's gauges named like counters; their per-type twins (without _total) stay. */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Latency buckets for an API whose predictions take milliseconds and whose artifacts may take longer. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/** Training jobs take seconds (a smoke run) to hours (many epochs on one core). */
const JOB_DURATION_BUCKETS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800];
/** BullMQ states of jobs that wait for a worker. */
const WAITING_STATES = ['waiting', 'prioritized', 'delayed'];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly predictions: Counter<'model_version'>;
  readonly batchSize: Histogram;
  readonly predictDuration: Histogram<'model'>;
  readonly jobDuration: Histogram<'model' | 'outcome'>;
  readonly jobsFinished: Counter<'model' | 'outcome'>;
  private stopJobEvents: (() => void) | undefined;
  /** One queue read per scrape, shared by the gauges that need it (undefined: the queue could not be read). */
  private scrape: Promise<QueueStats | undefined> | undefined;

  constructor(queue?: QueueStatsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    for (const name of MISNAMED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
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
    this.predictDuration = new Histogram({
      name: 'digits_predict_duration_seconds',
      help: 'Predict requests (POST /v1/predict and /v2 infer) from parsed body to answer, by model name',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'digits_job_duration_seconds',
      help: 'Training jobs from start to end, by model name and outcome (completed, failed, cancelled)',
      labelNames: ['model', 'outcome'],
      buckets: JOB_DURATION_BUCKETS,
      registers,
    });
    this.jobsFinished = new Counter({
      name: 'digits_jobs_finished_total',
      help: 'Training jobs finished, by model name and outcome (completed, failed, cancelled)',
      labelNames: ['model', 'outcome'],
      registers,
    });
    if (!queue) return;
    this.stopJobEvents = queue.onFinished?.((job) => this.observeJob(job));

    // Redis away: the queue gauges are left out of this scrape (the connection logs the outage), the rest still answers.
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
    new Gauge({
      name: 'digits_queue_depth',
      help: 'Training jobs waiting for a worker (BullMQ waiting, prioritized and delayed)',
      registers,
      async collect() {
        const counts = (await stats())?.counts ?? {};
        this.set(WAITING_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0));
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

  /** Counts one finished job (and its duration, when it started). */
  observeJob(job: FinishedJob): void {
    const labels = { model: job.request.dataset, outcome: job.state };
    this.jobsFinished.inc(labels);
    if (job.startedAt && job.finishedAt) {
      this.jobDuration.observe(labels, Math.max(0, Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000);
    }
  }

  /** Adds the serving gauges, read at scrape time: model info and the micro-batchers' depth. */
  watchServing(serving: ServingStatsSource): void {
    const registers = [this.registry];
    new Gauge({
      name: 'digits_model_info',
      help: 'Models loaded for serving (value 1), by name, version and test accuracy',
      labelNames: ['model', 'version', 'accuracy'],
      registers,
      collect() {
        this.reset();
        for (const model of serving.loaded()) this.set({ model: model.name, version: model.version, accuracy: String(model.testAccuracy) }, 1);
      },
    });
    new Gauge({
      name: 'digits_predict_queue_depth',
      help: 'Images waiting in or running through the micro-batchers of the loaded models',
      registers,
      collect() {
        this.set(serving.pendingImages());
      },
    });
  }

  /** Stops following job events (the app is closing). */
  close(): void {
    this.stopJobEvents?.();
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
