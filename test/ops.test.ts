// Operations over real HTTP: /readyz (Redis and the loaded model, 503 while Redis
// is down and back when it returns), /metrics counting what happened, and the
// API documentation from openapi.yaml.
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { parse } from 'yaml';
import { freePort, startRedisServer } from '../src/lib/redis-server.ts';
import { connectRedis } from '../src/lib/redis.ts';
import { QUEUE_NAME } from '../src/queue/connection.ts';
import { waitFor } from './helpers/jobs.ts';
import { pngOf, postPredict, startServingApi, strokePixels, type ServingApi } from './helpers/serving.ts';

/** The value of one sample line of a Prometheus text exposition, e.g. `metric{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scrape = async (url: string) => {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
};

describe('with Redis up', () => {
  let api: ServingApi;

  beforeAll(async () => {
    api = await startServingApi({ redisUrl: inject('redisUrl') });
  });

  afterAll(async () => {
    await api?.close();
  });

  it('/healthz and /readyz answer; ready without a model, then names the model loaded', async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const before = await fetch(`${api.url}/readyz`);
    expect(before.status).toBe(200);
    expect(await before.json()).toEqual({ status: 'ready', redis: 'up', model: null, models: [] });

    const published = await api.publishAndAnnounce(5);
    const ready = await waitFor('the model to load', async () => {
      const body = await (await fetch(`${api.url}/readyz`)).json();
      return body.model ? body : undefined;
    });
    expect(ready).toEqual({
      status: 'ready',
      redis: 'up',
      model: { model: 'mnist', version: published.version, dataset: 'mnist', testAccuracy: published.testAccuracy },
      models: [{ name: 'mnist', defaultVersion: published.version, servedVersion: published.version, problem: null }],
    });
  });

  it('/metrics counts requests by route, predictions by version and micro-batch sizes', async () => {
    const { version } = await (await fetch(`${api.url}/readyz`)).json().then((body) => body.model);
    const series = {
      predictions: `digits_predictions_total{model_version="${version}"}`,
      latency: 'http_request_duration_seconds_count{method="POST",route="/v1/predict",status_code="200"}',
      rejected: 'http_request_duration_seconds_count{method="POST",route="/v1/predict",status_code="415"}',
      batches: 'digits_predict_batch_size_count',
      images: 'digits_predict_batch_size_sum',
    };
    const before = await scrape(api.url);
    const read = (text: string, key: keyof typeof series) => sample(text, series[key]) ?? 0;

    await postPredict(`${api.url}/v1/predict`, new Uint8Array(await pngOf(strokePixels(1))), 'image/png');
    const batch = JSON.stringify({ instances: [{ pixels: Array.from(strokePixels(2)) }, { pixels: Array.from(strokePixels(3)) }] });
    await postPredict(`${api.url}/v1/predict`, batch, 'application/json');
    await postPredict(`${api.url}/v1/predict`, 'hello', 'text/plain');

    const after = await scrape(api.url);
    expect(read(after, 'predictions') - read(before, 'predictions')).toBe(3);
    expect(read(after, 'latency') - read(before, 'latency')).toBe(2);
    expect(read(after, 'rejected') - read(before, 'rejected')).toBe(1);
    expect(read(after, 'images') - read(before, 'images')).toBe(3);
    expect(read(after, 'batches') - read(before, 'batches')).toBeGreaterThanOrEqual(2);
    expect(after).toMatch(/^http_request_duration_seconds_bucket\{le="0\.005",method="POST",route="\/v1\/predict",status_code="200"\} \d+$/m);
    expect(after).toMatch(/^process_cpu_seconds_total \d/m);
  });

  it('/metrics reads the queue at scrape time: depth by state, and the epoch and accuracy of active jobs', async () => {
    const created = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ epochs: 3, limit: 100 }),
    });
    expect(created.status).toBe(202);
    const { id } = await created.json();
    let text = await scrape(api.url);
    expect(sample(text, 'digits_queue_up')).toBe(1);
    expect(sample(text, 'digits_queue_jobs{state="waiting"}')).toBe(1);

    // A stand-in worker takes the job and reports progress the way the real one does.
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const connection = connectRedis(inject('redisUrl'), 'blocking');
    const worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        const metrics = { epoch: 1, trainLoss: 0.5, trainAccuracy: 0.8, testLoss: 0.4, testAccuracy: 0.875, seconds: 1, imagesPerSecond: 100, engine: 'test' };
        const batch = { epoch: 2, epochs: 3, batch: 1, batches: 1, fraction: 0.5, etaSeconds: 1, runningLoss: 0.3 };
        await job.updateProgress({ batch, metrics: [metrics], engine: 'test', resumedFromEpoch: null });
        await finished;
        return { modelVersion: 'v0001-000000', metrics: [metrics], engine: 'test', outcome: 'completed' };
      },
      { connection, prefix: api.prefix },
    );
    try {
      text = await waitFor('the job to show as active in /metrics', async () => {
        const current = await scrape(api.url);
        return sample(current, `digits_training_epoch{job_id="${id}"}`) === 2 ? current : undefined;
      });
      expect(sample(text, 'digits_queue_jobs{state="active"}')).toBe(1);
      expect(sample(text, `digits_training_epochs{job_id="${id}"}`)).toBe(3);
      expect(sample(text, `digits_training_test_accuracy{job_id="${id}"}`)).toBe(0.875);

      finish();
      text = await waitFor('the job to complete', async () => {
        const current = await scrape(api.url);
        return sample(current, 'digits_queue_jobs{state="completed"}') === 1 ? current : undefined;
      });
      expect(text).not.toContain(`job_id="${id}"`);
    } finally {
      finish();
      await worker.close();
      connection.disconnect();
    }
  });

  it('serves openapi.yaml and a self-contained /docs page rendered from it', async () => {
    const yamlResponse = await fetch(`${api.url}/openapi.yaml`);
    expect(yamlResponse.status).toBe(200);
    expect(yamlResponse.headers.get('content-type')).toMatch(/^application\/yaml/);
    const spec = parse(await yamlResponse.text());
    expect(spec.paths['/v1/predict'].post).toBeTruthy();

    const docs = await fetch(`${api.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await docs.text();
    for (const path of Object.keys(spec.paths)) expect(html).toContain(`<code>${path}</code>`);
    expect(html).toContain('id="schema-');
    const anchors = new Set([...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]));
    const broken = [...html.matchAll(/href="#([^"]+)"/g)].map((m) => m[1]).filter((id) => !anchors.has(id));
    expect(broken).toEqual([]); // every $ref is a working link
    expect(html).not.toMatch(/<script|<link[^>]+https?:/); // nothing fetched from elsewhere
  });
});

describe('with Redis down', () => {
  it('/readyz answers 503 (and /healthz 200), and recovers when Redis comes back', async () => {
    const port = await freePort();
    const api = await startServingApi({ redisUrl: `redis://127.0.0.1:${port}` });
    let redis: Awaited<ReturnType<typeof startRedisServer>> | undefined;
    try {
      expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
      const down = await fetch(`${api.url}/readyz`);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ status: 'unready', redis: 'down', detail: expect.stringContaining('Redis') });
      const metrics = await scrape(api.url);
      expect(sample(metrics, 'digits_queue_up')).toBe(0);

      redis = await startRedisServer({ port });
      await waitFor('readiness after Redis returns', async () => (await fetch(`${api.url}/readyz`)).status === 200, 30_000);
    } finally {
      await api.close();
      await redis?.stop();
    }
  });
});
