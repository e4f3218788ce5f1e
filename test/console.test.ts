// The web console in a real browser (Debian's chromium through playwright-core)
// against the real app on a free port, a real worker process and real Redis,
// with API keys on. It trains a small job from the form and watches it live,
// draws a digit for a prediction, uploads an MNIST image, promotes a version,
// and saves the README's screenshots (docs/screenshots/) on the way.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readIdxImages } from '../src/data/idx.ts';
import type { ModelVersion } from '../src/registry/types.ts';
import { makeDirs, REPO_ROOT, spawnWorker, waitFor, writeTinyMnist, type WorkerProcess } from './helpers/jobs.ts';
import { publishSeedNet, startServingApi, type ServingApi } from './helpers/serving.ts';
import { DEFAULT_PRESET } from '../src/training/recipe.ts';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`console.test.ts: SKIPPED, no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
}

const MNIST_DIR = join(REPO_ROOT, '..', 'shared', 'data', 'mnist');
const hasMnist = existsSync(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
const SCREENSHOTS = join(REPO_ROOT, 'docs', 'screenshots');
const API_KEY = 'console-test-key';
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
/** Small enough to train in seconds, big enough to learn digits a little: 2 epochs of 2000 images. */
const JOB_FORM = { epochs: '2', batchSize: '32', learningRate: '0.05', momentum: '0.9', limit: '2000', name: 'console test' };
/** Batches per epoch of JOB_FORM: one loss-curve point each (well under the curve's bound). */
const JOB_BATCHES = Math.ceil(2000 / 32);

let api: ServingApi;
let worker: WorkerProcess;
let browser: Browser;
let page: Page;
let untrained: ModelVersion;
let trainedVersion: string;
const pageErrors: string[] = [];
/** Every /v1/predict answer's status, in order. */
const predictStatuses: number[] = [];
/** Everything the page asked for that was not there. */
const notFound: string[] = [];

const screenshot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });

/** Strokes of a "7" on the drawing pad with the mouse, in fractions of its size. */
async function drawSeven(): Promise<void> {
  const box = (await page.locator('#pad').boundingBox())!;
  const at = (x: number, y: number) => [box.x + x * box.width, box.y + y * box.height] as const;
  await page.mouse.move(...at(0.25, 0.22));
  await page.mouse.down();
  await page.mouse.move(...at(0.75, 0.22), { steps: 8 });
  await page.mouse.move(...at(0.45, 0.85), { steps: 10 });
  await page.mouse.up();
}

/** Waits for the prediction panel to show a label and returns what it shows. */
async function shownPrediction() {
  await page.locator('#prediction .prediction-result').waitFor({ state: 'visible' });
  return {
    label: await page.locator('#prediction-label').textContent(),
    bars: await page.locator('#prediction-bars li').count(),
    top: await page.locator('#prediction-bars li.top').count(),
    version: await page.locator('#prediction-model code').textContent(),
  };
}

describe.skipIf(!hasChromium)('web console', () => {
  beforeAll(async () => {
    if (!hasMnist) console.warn(`console.test.ts: no MNIST at ${MNIST_DIR}; training on a generated stand-in`);
    const mnistDir = hasMnist ? MNIST_DIR : await writeTinyMnist(2000, 500);
    const dirs = await makeDirs(mnistDir);
    api = await startServingApi({ redisUrl: inject('redisUrl'), modelDir: dirs.modelDir, env: { API_KEYS: API_KEY } });
    untrained = await publishSeedNet(api.registry, 1);
    worker = spawnWorker({ redisUrl: inject('redisUrl'), prefix: api.prefix, dirs });
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: DESKTOP });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/v1/predict') predictStatuses.push(response.status());
      if (response.status() === 404) notFound.push(response.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    worker?.child.kill('SIGTERM');
    await worker?.exited;
    await api?.close();
  });

  it('asks for the API key, shows validation problems, then trains a job and draws its progress and curves live', async () => {
    await page.goto(`${api.url}/#train`);
    // Nothing has asked for a key yet, so there is no key button (a service without API keys never shows one).
    expect(await page.locator('#api-key-button').isHidden()).toBe(true);
    // The form starts at the service's default preset, with every number left to it.
    expect(await page.inputValue('select[name=recipe]')).toBe(DEFAULT_PRESET);
    expect(await page.inputValue('select[name=architecture]')).toBe('seed');
    for (const name of ['epochs', 'batchSize', 'learningRate', 'momentum']) expect(await page.inputValue(`input[name=${name}]`)).toBe('');
    for (const [name, value] of Object.entries(JOB_FORM)) await page.fill(`input[name=${name}]`, value);
    await page.fill('input[name=batchSize]', '100000');
    await page.click('#train-form button[type=submit]');

    // API keys are on: the 401 opens the key dialog; the request is retried with the key.
    await page.locator('#key-dialog').waitFor({ state: 'visible' });
    expect(await page.textContent('#key-dialog-reason')).toMatch(/API key/i);
    await page.fill('#key-dialog input[name=key]', API_KEY);
    await page.click('#key-dialog button[value=ok]');
    // The service wants keys: from now on the button is there to change or forget the key.
    expect(await page.locator('#api-key-button').isVisible()).toBe(true);

    // Sent again with the key, the request gets the service's 422 problem, shown readably, naming the field.
    const problem = page.locator('#train-error');
    await problem.waitFor({ state: 'visible' });
    expect(await problem.textContent()).toMatch(/batchSize/);
    expect(await page.evaluate(() => sessionStorage.getItem('digits.apiKey'))).toBe(API_KEY);

    await page.fill('input[name=batchSize]', JOB_FORM.batchSize);
    await page.click('#train-form button[type=submit]');
    await page.waitForURL(/#jobs\/[0-9a-f-]{36}$/);
    const jobId = page.url().split('/').at(-1)!;
    // The form sent the preset and only the fields filled in; the service resolved the rest from the preset.
    const created = (await (await fetch(`${api.url}/v1/jobs/${jobId}`, { headers: { 'x-api-key': API_KEY } })).json()) as { request: Record<string, unknown> };
    expect(created.request).toMatchObject({ recipe: DEFAULT_PRESET, architecture: 'seed', epochs: 2, batchSize: 32, learningRate: 0.05, limit: 2000 });

    // Live progress from the event stream, then the first epoch point on both charts.
    // (This text is only shown while the job is active, from its latest progress event.)
    await page.locator('#job-progress-text', { hasText: /Epoch \d\/2, batch \d+\/\d+/ }).waitFor({ timeout: 90_000 });
    // During the first epoch (no epoch point yet), all read at one moment: the engine is
    // named, the loss is drawn per batch, and the empty accuracy axis has distinct labels.
    const firstEpoch = await page.waitForFunction(
      () => {
        const text = (id: string) => document.getElementById(id)!.textContent ?? '';
        const accuracy = document.getElementById('chart-accuracy')!;
        if (text('job-state') !== 'active' || !/^Epoch 1\/2/.test(text('job-progress-text')) || accuracy.dataset.points !== '0') return null;
        const facts = [...document.querySelectorAll('#job-facts dt')].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent]);
        return {
          engine: Object.fromEntries(facts).Engine,
          batchPoints: document.getElementById('chart-loss')!.dataset.batchPoints,
          accuracyTicks: accuracy.dataset.yTicks,
          accuracyNote: document.getElementById('chart-accuracy-note')?.hidden === false,
        };
      },
      null,
      { timeout: 90_000 },
    );
    const during = (await firstEpoch.jsonValue())!;
    expect(during.engine).toMatch(/wasm|cpu|node|gpu/);
    expect(Number(during.batchPoints)).toBeGreaterThanOrEqual(1);
    const ticks = during.accuracyTicks?.split(',') ?? [];
    expect(ticks.length).toBeGreaterThan(1);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(during.accuracyNote).toBe(true);
    // An epoch point while the job is still running (epoch 2 of 2 is still to come): drawn from the stream.
    await page.waitForFunction(
      () =>
        document.querySelector('#job-state')!.textContent === 'active' &&
        Number(document.querySelector<HTMLElement>('#chart-accuracy')!.dataset.points) >= 1,
      null,
      { timeout: 90_000 },
    );
    expect(Number(await page.getAttribute('#chart-loss', 'data-points'))).toBeGreaterThanOrEqual(1);
    expect(Number(await page.getAttribute('#job-progress', 'style').then((s) => /width: ([\d.]+)%/.exec(s ?? '')?.[1]))).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#chart-accuracy canvas').count()).toBeGreaterThan(0);

    await page.locator('#job-state', { hasText: 'completed' }).waitFor({ timeout: 120_000 });
    expect(await page.getAttribute('#chart-accuracy', 'data-points')).toBe('2');
    // The loss of every batch, and the one epoch boundary of a 2-epoch run marked.
    expect(await page.getAttribute('#chart-loss', 'data-batch-points')).toBe(String(2 * JOB_BATCHES));
    expect(await page.getAttribute('#chart-loss', 'data-epoch-marks')).toBe('1');
    expect(await page.locator('#chart-accuracy-note').isHidden()).toBe(true);
    expect(await page.getAttribute('#job-progress', 'style')).toContain('width: 100');
    expect(await page.textContent('#job-facts')).toMatch(/wasm|cpu|node|gpu/);
    // Better than the untrained default (policy if-better, the form's default): promoted, and the page says why.
    expect(await page.textContent('#job-facts')).toMatch(/Promotionpromoted: test accuracy [0-9.]+ ≥ the previous default/);
    expect(await page.locator('#job-cancel').isHidden()).toBe(true);
    trainedVersion = (await page.textContent('#job-facts a code'))!;
    const versions = (await api.registry.list()).map((model) => model.version);
    expect(versions).toContain(trainedVersion);
    await screenshot('console-job');

    await page.goto(`${api.url}/#jobs`);
    await page.locator(`#jobs-list li[data-job-id="${jobId}"][data-state=completed]`).waitFor();
    expect(await page.textContent(`#jobs-list li[data-job-id="${jobId}"]`)).toContain('2/2 epochs');
    await page.setViewportSize(PHONE);
    await screenshot('console-jobs-phone');
    await page.setViewportSize(DESKTOP);
  }, 240_000);

  it('draws a digit with the mouse and shows the prediction and the model that answered', async () => {
    // The API swaps to the worker's newly published model on its announcement.
    await waitFor('the trained model to be served', async () => {
      const ready = (await (await fetch(`${api.url}/readyz`)).json()) as { model: { version: string } | null };
      return ready.model?.version === trainedVersion;
    });
    await page.goto(`${api.url}/#try`);
    await drawSeven();
    const prediction = await shownPrediction();
    // Every request the drawing sent was answered with a prediction (none for a still-blank pad).
    expect(predictStatuses.length).toBeGreaterThan(0);
    expect(predictStatuses.every((status) => status === 200)).toBe(true);
    expect(prediction.label).toMatch(/^\d$/);
    expect(prediction.bars).toBe(10);
    expect(prediction.top).toBe(1);
    expect(prediction.version).toBe(trainedVersion);
    await screenshot('console-try');

    await page.click('#pad-clear');
    expect(await page.locator('#prediction .prediction-result').isHidden()).toBe(true);

    // An uploaded image (the first MNIST test image, as PNG) is classified too. The generated
    // stand-in's images are flat fills with no digit in them, so without MNIST: a drawn "1".
    const pixels = hasMnist
      ? (await readIdxImages(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'))).pixels.subarray(0, 784)
      : new Uint8Array(784).map((_, p) => (p % 28 >= 12 && p % 28 < 16 && p >= 4 * 28 && p < 24 * 28 ? 255 : 0));
    const png = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    await page.setInputFiles('#pad-upload', { name: 'mnist-0.png', mimeType: 'image/png', buffer: png });
    expect((await shownPrediction()).bars).toBe(10);

    // Phone-sized: nothing wider than the screen, drawing still works.
    await page.setViewportSize(PHONE);
    await page.click('#pad-clear');
    await drawSeven();
    expect((await shownPrediction()).label).toMatch(/^\d$/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await screenshot('console-try-phone');
    await page.setViewportSize(DESKTOP);
  });

  it('lists the model versions and promotes one to be served', async () => {
    await page.goto(`${api.url}/#models`);
    const untrainedCard = page.locator(`#models-list li[data-version="${untrained.version}"]`);
    await untrainedCard.waitFor();
    expect(await page.locator('#models-list li').count()).toBe(2);
    expect(await page.locator('#models-list li.latest').getAttribute('data-version')).toBe(trainedVersion);
    expect(await untrainedCard.textContent()).toMatch(/14,320/);
    expect(await untrainedCard.locator('a', { hasText: 'weights.bin' }).getAttribute('href')).toBe(`/v1/models/mnist/versions/${untrained.version}/weights.bin`);
    // Grouped by model name, the group saying which version is its default.
    expect(await page.locator('#models-list .model-group[data-model="mnist"] h2').textContent()).toContain(`default ${trainedVersion}`);
    await screenshot('console-models');

    // Downloads go through fetch with the key (GET /v1 routes need one too when API keys are on).
    const [download] = await Promise.all([page.waitForEvent('download'), untrainedCard.locator('a', { hasText: 'model.json' }).click()]);
    expect(download.suggestedFilename()).toBe('model.json');
    const modelJson = JSON.parse(await readFile((await download.path())!, 'utf8'));
    expect(modelJson.weightsManifest[0].paths).toEqual(['./weights.bin']);

    await untrainedCard.locator('button.promote').click();
    await page.locator(`#models-list li.latest[data-version="${untrained.version}"]`).waitFor();
    expect((await api.registry.latest())?.version).toBe(untrained.version);
    expect(await page.locator('#models-error').isHidden()).toBe(true);

    // The trained version is no longer the default: it can be deleted (two clicks: arm, then confirm).
    const trainedCard = page.locator(`#models-list li[data-version="${trainedVersion}"]`);
    await trainedCard.locator('button.delete').click();
    await trainedCard.locator('button.delete', { hasText: 'Really delete?' }).click();
    await trainedCard.waitFor({ state: 'detached' });
    expect((await api.registry.list()).map((model) => model.version)).toEqual([untrained.version]);
    expect(await page.locator(`#models-list li[data-version="${untrained.version}"] button.delete`).count()).toBe(0);

    await page.setViewportSize(PHONE);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.setViewportSize(DESKTOP);
  });

  it('shows an active job the same way on the list and its page, and cancels it from its page', async () => {
    await page.goto(`${api.url}/#train`);
    await page.fill('input[name=epochs]', '20');
    await page.fill('input[name=name]', 'to cancel');
    await page.click('#train-form button[type=submit]');
    await page.waitForURL(/#jobs\/[0-9a-f-]{36}$/);
    const jobUrl = page.url();
    const jobId = jobUrl.split('/').at(-1)!;
    const where = /Epoch \d+\/20, batch \d+\/\d+/;
    await page.locator('#job-progress-text', { hasText: where }).waitFor({ timeout: 90_000 });
    // The list says where the job is in the page's words (it said "epoch 0/2" while the page said "Epoch 1/2").
    await page.goto(`${api.url}/#jobs`);
    await page.locator(`#jobs-list li[data-job-id="${jobId}"][data-state=active]`, { hasText: where }).waitFor();
    await page.goto(jobUrl);
    const cancel = page.locator('#job-cancel');
    await cancel.waitFor({ state: 'visible' });
    await cancel.click();
    await page.locator('#job-state', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
    expect(await cancel.isHidden()).toBe(true);
    expect(await page.locator('#job-error').isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
    expect(notFound).toEqual([]);
  });

  it('has an icon: /favicon.ico and the one the page links', async () => {
    const ico = await fetch(`${api.url}/favicon.ico`);
    expect(ico.status).toBe(200);
    expect(ico.headers.get('content-type')).toBe('image/x-icon');
    // An ICO directory (reserved 0, type 1) with at least one image.
    const bytes = Buffer.from(await ico.arrayBuffer());
    expect([bytes.readUInt16LE(0), bytes.readUInt16LE(2)]).toEqual([0, 1]);
    expect(bytes.readUInt16LE(4)).toBeGreaterThan(0);
    const linked = await page.$$eval('link[rel=icon]', (links) => links.map((link) => (link as HTMLLinkElement).href));
    expect(linked.length).toBeGreaterThan(0);
    for (const href of linked) {
      const answer = await fetch(href);
      expect(answer.status, href).toBe(200);
      expect(answer.headers.get('content-type'), href).toMatch(/^image\//);
    }
  });
});
