// The operator metrics over real HTTP: a real /metrics scrape, after real
// predictions (v1 and v2) and real jobs finishing every way (a stand-in BullMQ
// worker completes one and fails one; one is cancelled while queued), carries
// the job, model and latency series, and passes `promtool check metrics`
// (Debian's `prometheus` package; .ci/run installs it).
import { spawnSync } from 'node:child_process';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { connectRedis } from '../src/lib/redis.ts';
import { QUEUE_NAME } from '../src/queue/connection.ts';
import { waitFor } from './helpers/jobs.ts';
import { postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

/** The value of one sample line of a Prometheus text exposition, e.g. `metric{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();

let api: ServingApi;

beforeAll(async () => {
  api = await startServingApi({ redisUrl: inject('redisUrl') });
});

afterAll(async () => {
  await api?.close();
});

const createJob = async (body: object) => {
  const response = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
};

describe('/metrics', () => {
  it('has model info, predict latency per model, queue depths and job outcomes and durations per model', async () => {
    const published = await api.publishAndAnnounce(31);
    await waitFor('the model to load', async () => (await fetch(`${api.url}/v2/health/ready`)).status === 200);

    // Predictions through both protocols.
    const pixels = Array.from(strokePixels(2));
    expect((await postPredict(`${api.url}/v1/predict`, JSON.stringify({ pixels }), 'application/json')).status).toBe(200);
    const infer = { inputs: [{ name: 'image', shape: [1, 784], datatype: 'UINT8', data: pixels }] };
    expect((await postPredict(`${api.url}/v2/models/mnist/infer`, JSON.stringify(infer), 'application/json')).status).toBe(200);

    // One job cancelled while queued, then one that completes and one that fails, taken by a stand-in worker.
    const cancelled = await createJob({ epochs: 1, limit: 64, seed: 3 });
    expect(sample(await scrape(api.url), 'digits_queue_depth')).toBe(1);
    expect((await fetch(`${api.url}/v1/jobs/${cancelled}/cancel`, { method: 'POST' })).status).toBe(200);
    await createJob({ epochs: 1, limit: 64, seed: 1 });
    await createJob({ epochs: 1, limit: 64, seed: 2, dataset: 'fashion-mnist' });
    const connection = connectRedis(inject('redisUrl'), 'blocking');
    const worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (job.data.request.seed === 2) throw new UnrecoverableError('stand-in failure');
        return { modelVersion: published.version, metrics: [], engine: 'test', outcome: 'completed' };
      },
      { connection, prefix: api.prefix },
    );
    let text: string;
    try {
      text = await waitFor('both jobs to be counted', async () => {
        const current = await scrape(api.url);
        return sample(current, 'digits_jobs_finished_total{model="fashion-mnist",outcome="failed"}') === 1 &&
          sample(current, 'digits_jobs_finished_total{model="mnist",outcome="completed"}') === 1
          ? current
          : undefined;
      });
    } finally {
      await worker.close();
      connection.disconnect();
    }

    expect(sample(text, 'digits_jobs_finished_total{model="mnist",outcome="cancelled"}')).toBe(1);
    expect(sample(text, 'digits_job_duration_seconds_count{model="mnist",outcome="completed"}')).toBe(1);
    expect(sample(text, 'digits_job_duration_seconds_sum{model="mnist",outcome="completed"}')).toBeGreaterThanOrEqual(0.04);
    expect(sample(text, 'digits_job_duration_seconds_count{model="fashion-mnist",outcome="failed"}')).toBe(1);
    // Cancelled before it started: counted, but it has no duration.
    expect(sample(text, 'digits_job_duration_seconds_count{model="mnist",outcome="cancelled"}')).toBeUndefined();
    expect(sample(text, 'digits_queue_depth')).toBe(0);
    expect(sample(text, 'digits_predict_queue_depth')).toBe(0);
    expect(sample(text, `digits_model_info{model="mnist",version="${published.version}",accuracy="${published.testAccuracy}"}`)).toBe(1);
    expect(sample(text, 'digits_predict_duration_seconds_count{model="mnist"}')).toBe(2);
    expect(text).not.toMatch(/^nodejs_active_\w+_total/m);
    expect(text).toMatch(/^nodejs_active_handles\{type="\w+"\} \d+$/m);

    // The whole scrape through promtool: no naming, type or format complaint.
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (promtool.error) throw new Error(`promtool is needed for this test (Debian: apt-get install prometheus): ${promtool.error.message}`);
    expect({ status: promtool.status, output: `${promtool.stdout}${promtool.stderr}` }).toEqual({ status: 0, output: '' });
  });
});
