// Jobs: the list (GET /v1/jobs, refreshed while on screen) and one job's page,
// which follows GET /v1/jobs/:id/events (Server-Sent Events: state, then
// progress and epoch, ending with completed | failed | cancelled) and draws
// the per-epoch curves as epochs arrive.
/* global uPlot, ResizeObserver, URLSearchParams */
import { api, dateTime, followEvents, h, percent, showError } from './api.js';

const FINISHED = new Set(['completed', 'failed', 'cancelled']);
const LIST_REFRESH_MS = 2000;
const RECONNECT_MS = 2000;
const PAGE_SIZE = 20;

const jobPath = (id) => `/v1/jobs/${encodeURIComponent(id)}`;

/** Fraction of the job done: its last batch report, or 1 when it completed. */
function doneFraction(job) {
  if (job.state === 'completed') return 1;
  if (job.progress) return job.progress.fraction;
  const epochs = job.metrics?.length ?? 0;
  return epochs / (job.request?.epochs || 1);
}

function progressBar(fraction) {
  const value = Math.max(0, Math.min(1, fraction ?? 0));
  const fill = h('div', { className: 'progress-fill', style: `width: ${(value * 100).toFixed(1)}%` });
  return h('div', { className: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': (value * 100).toFixed(0) }, fill);
}

const badge = (state) => h('span', { className: `badge state-${state}` }, state);

// ---- the list ----------------------------------------------------------------

const listElement = document.getElementById('jobs-list');
const listError = document.getElementById('jobs-error');
const moreButton = document.getElementById('jobs-more');
let refreshTimer = null;
let shownPages = 1;

function jobRow(job) {
  const last = job.metrics?.at(-1);
  const epochs = job.request?.epochs;
  return h(
    'li',
    { className: 'job-row', 'data-job-id': job.id, 'data-state': job.state },
    h(
      'a',
      { href: `#jobs/${encodeURIComponent(job.id)}` },
      h('span', { className: 'job-title' }, job.name ?? h('code', {}, job.id.slice(0, 8))),
      badge(job.state),
      progressBar(doneFraction(job)),
      h(
        'span',
        { className: 'muted job-meta' },
        `${job.request?.dataset ?? ''} · epoch ${job.metrics?.length ?? 0}/${epochs ?? '?'}`,
        last ? ` · test ${percent(last.testAccuracy)}` : '',
        ` · ${dateTime(job.createdAt)}`,
      ),
    ),
  );
}

async function loadJobs({ refresh = false } = {}) {
  try {
    // Refreshing re-reads every page shown so far, newest first.
    const jobs = [];
    let cursor = null;
    for (let page = 0; page < shownPages; page += 1) {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set('cursor', cursor);
      const answer = await api(`/v1/jobs?${query}`, { askForKeyOn401: !refresh });
      jobs.push(...answer.jobs);
      cursor = answer.nextCursor;
      if (!cursor) break;
    }
    listElement.replaceChildren(...jobs.map(jobRow));
    document.getElementById('jobs-empty').hidden = jobs.length > 0;
    moreButton.hidden = !cursor;
    showError(listError, null);
  } catch (error) {
    showError(listError, error);
  }
}

moreButton.addEventListener('click', () => {
  shownPages += 1;
  void loadJobs();
});

export const jobsView = {
  enter() {
    shownPages = 1;
    void loadJobs();
    refreshTimer = setInterval(() => loadJobs({ refresh: true }), LIST_REFRESH_MS);
  },
  leave() {
    clearInterval(refreshTimer);
  },
};

// ---- one job -------------------------------------------------------------------

const jobError = document.getElementById('job-error');
const cancelButton = document.getElementById('job-cancel');
let job = null;
/** Aborts the event stream of the job on screen. */
let following = null;
let charts = [];
let resizeObserver = null;
/** Bumped on every enter and leave, so an answer for a page already left is dropped. */
let visit = 0;

function chart(elementId, label, trainKey, testKey, asPercent) {
  const element = document.getElementById(elementId);
  element.replaceChildren();
  const plot = new uPlot(
    {
      width: Math.max(200, element.clientWidth),
      height: 220,
      scales: {
        // The whole run on the x axis from the start, so the curve grows into it.
        x: { time: false, range: () => [1, Math.max(2, job?.request?.epochs ?? 2)] },
        y: asPercent ? { range: (_u, min, max) => [Math.max(0, Math.min(min, 0.9) - 0.02), Math.min(1, max + 0.01)] } : {},
      },
      legend: { live: false },
      // Epochs are whole numbers: ticks 1, 2, 5, … epochs apart, never at 1.2.
      axes: [
        { label: 'epoch', incrs: [1, 2, 5, 10, 20, 50] },
        { label, size: 60, values: (_u, ticks) => ticks.map((t) => (asPercent ? `${(t * 100).toFixed(0)}%` : t.toFixed(2))) },
      ],
      series: [
        { label: 'epoch' },
        { label: 'train', stroke: '#2563eb', width: 2, points: { show: true, size: 6 } },
        { label: 'test', stroke: '#ea580c', width: 2, points: { show: true, size: 6 } },
      ],
    },
    [[], [], []],
    element,
  );
  return { element, plot, trainKey, testKey };
}

function drawCurves() {
  const metrics = job?.metrics ?? [];
  for (const { element, plot, trainKey, testKey } of charts) {
    plot.setData([metrics.map((m) => m.epoch), metrics.map((m) => m[trainKey]), metrics.map((m) => m[testKey])]);
    // For tests and scripts: how many epochs the chart shows.
    element.dataset.points = String(metrics.length);
  }
}

function fact(name, value) {
  return [h('dt', {}, name), h('dd', {}, value ?? '–')];
}

function renderJob() {
  document.getElementById('job-id').replaceChildren(job.name ?? h('code', {}, job.id));
  const state = document.getElementById('job-state');
  state.textContent = job.state;
  state.className = `badge state-${job.state}`;

  const fraction = doneFraction(job);
  const fill = document.getElementById('job-progress');
  fill.style.width = `${(Math.max(0, Math.min(1, fraction)) * 100).toFixed(1)}%`;
  fill.parentElement.setAttribute('aria-valuenow', (fraction * 100).toFixed(0));
  const p = job.progress;
  const progressText =
    job.state === 'active' && p
      ? `Epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches} · ${percent(p.fraction)} · loss ${p.runningLoss.toFixed(4)} · about ${Math.ceil(p.etaSeconds)} s left`
      : job.state === 'queued'
        ? 'Waiting for a worker…'
        : `${percent(fraction, 0)} done`;
  document.getElementById('job-progress-text').textContent = progressText;

  const r = job.request ?? {};
  const last = job.metrics?.at(-1);
  document.getElementById('job-facts').replaceChildren(
    ...fact('Dataset', r.dataset),
    ...fact('Recipe', `${r.epochs} epochs · batch ${r.batchSize} · lr ${r.learningRate} · momentum ${r.momentum}${r.limit ? ` · limit ${r.limit}` : ''}`),
    ...fact('Engine', job.engine),
    ...fact('Attempts', String(job.attempts ?? 0) + (job.resumedFromEpoch ? ` (resumed at epoch ${job.resumedFromEpoch})` : '')),
    ...fact('Test accuracy', last ? percent(last.testAccuracy, 2) : null),
    ...fact('Model', job.modelVersion ? h('a', { href: '#models' }, h('code', {}, job.modelVersion)) : null),
    ...fact('Model name', job.model ?? null),
    // Whether the version became its name's default, and why (the job's promote policy).
    ...fact('Promotion', job.promotion ?? null),
    ...fact('Created', dateTime(job.createdAt)),
    ...fact('Finished', job.finishedAt ? dateTime(job.finishedAt) : null),
    ...(job.error ? fact('Error', job.error) : []),
  );
  cancelButton.hidden = FINISHED.has(job.state);
  drawCurves();
}

/** Keeps one entry per epoch, in order, whichever way (GET or stream) it arrived. */
function addEpoch(metrics) {
  job.metrics = [...job.metrics.filter((m) => m.epoch !== metrics.epoch), metrics].sort((a, b) => a.epoch - b.epoch);
}

/** Applies one event of the job's stream to the page. */
function applyEvent(name, data) {
  if (!job) return;
  if (name === 'state' || FINISHED.has(name)) job = { ...data, metrics: data.metrics ?? [] };
  else if (name === 'progress') Object.assign(job, { state: 'active', progress: data.progress });
  else if (name === 'epoch') addEpoch(data.metrics);
  else if (name === 'error') showError(jobError, new Error(data.detail ?? 'the event stream failed'));
  renderJob();
}

/** Follows the job until it finishes; a dropped stream is reopened (it starts with the current state). */
async function follow(id, signal) {
  while (!signal.aborted && job && !FINISHED.has(job.state)) {
    try {
      await followEvents(`${jobPath(id)}/events`, applyEvent, signal);
    } catch (error) {
      if (signal.aborted) return;
      showError(jobError, error);
      // 4xx (unknown job, no key given) will not get better by asking again.
      if (error.status >= 400 && error.status < 500) return;
    }
    if (!FINISHED.has(job?.state)) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function stopFollowing() {
  following?.abort();
  following = null;
}

cancelButton.addEventListener('click', async () => {
  if (!job) return;
  cancelButton.disabled = true;
  try {
    const answer = await api(`${jobPath(job.id)}/cancel`, { method: 'POST' });
    const view = answer?.job ?? answer;
    if (view?.id === job.id) {
      job = { ...view, metrics: view.metrics ?? job.metrics };
      renderJob();
    }
    showError(jobError, null);
  } catch (error) {
    showError(jobError, error);
  } finally {
    cancelButton.disabled = false;
  }
});

export const jobView = {
  async enter(id) {
    const thisVisit = ++visit;
    job = null;
    showError(jobError, null);
    document.getElementById('job-id').textContent = id;
    document.getElementById('job-facts').replaceChildren();
    cancelButton.hidden = true;
    charts = [
      chart('chart-loss', 'loss', 'trainLoss', 'testLoss', false),
      chart('chart-accuracy', 'accuracy', 'trainAccuracy', 'testAccuracy', true),
    ];
    resizeObserver = new ResizeObserver(() => {
      for (const { element, plot } of charts) plot.setSize({ width: Math.max(200, element.clientWidth), height: 220 });
    });
    for (const { element } of charts) resizeObserver.observe(element);
    try {
      const view = await api(jobPath(id));
      if (thisVisit !== visit) return;
      job = { ...view, metrics: view.metrics ?? [] };
      renderJob();
      following = new AbortController();
      void follow(id, following.signal);
    } catch (error) {
      if (thisVisit === visit) showError(jobError, error);
    }
  },
  leave() {
    visit += 1;
    stopFollowing();
    resizeObserver?.disconnect();
    for (const { plot } of charts) plot.destroy();
    charts = [];
    job = null;
  },
};
