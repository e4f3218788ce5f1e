// Jobs: the list (GET /v1/jobs, refreshed while on screen) and one job's page,
// which follows GET /v1/jobs/:id/events (Server-Sent Events: state, then
// progress and epoch, ending with completed | failed | cancelled) and draws
// the loss per batch live (progress carries the job's bounded loss curve) and
// the per-epoch train and test points as epochs end, epochs marked.
/* global uPlot, ResizeObserver, URLSearchParams, devicePixelRatio */
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
        `${job.request?.dataset ?? ''} · ${epochSummary(job)}`,
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

/** Epochs marked on the charts: a dashed line where each finished epoch ended. */
function epochMarksPlugin(element) {
  return {
    hooks: {
      draw: [
        (u) => {
          const reached = Math.floor(trainedUpTo());
          const last = Math.min(reached, Math.max(1, job?.request?.epochs ?? 1) - 1);
          const { ctx, bbox } = u;
          ctx.save();
          ctx.strokeStyle = '#9ca3af';
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
          for (let epoch = 1; epoch <= last; epoch++) {
            const x = Math.round(u.valToPos(epoch, 'x', true));
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
          }
          ctx.restore();
          // For tests and scripts: how many epoch boundaries are drawn.
          element.dataset.epochMarks = String(Math.max(0, last));
        },
      ],
    },
  };
}

/** How far training has got, in epochs (what the x axes count). */
function trainedUpTo() {
  const p = job?.progress;
  const fromBatch = job?.state === 'active' && p ? p.epoch - 1 + p.batch / p.batches : 0;
  return Math.max(fromBatch, job?.metrics?.at(-1)?.epoch ?? 0, job?.lossCurve?.points?.at(-1)?.[0] ?? 0);
}

/**
 * Tick labels as precise as the tick spacing needs (no "1%, 1%, 1%, 0%"), also kept
 * in data-y-ticks for tests and scripts.
 */
function tickLabels(element, asPercent) {
  return (_u, ticks) => {
    const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    const scaled = asPercent ? step * 100 : step;
    // The fewest decimals that write the step exactly (0.25 → 2, not 0.3).
    let digits = asPercent ? 0 : 1;
    while (digits < 4 && Math.abs(Math.round(scaled * 10 ** digits) - scaled * 10 ** digits) > 1e-6) digits += 1;
    const labels = ticks.map((t) => (asPercent ? `${(t * 100).toFixed(digits)}%` : t.toFixed(digits)));
    element.dataset.yTicks = labels.join(',');
    return labels;
  };
}

const epochPoints = (label, stroke) => ({ label, stroke, width: 2, spanGaps: true, points: { show: true, size: 7, fill: stroke } });

function chart(elementId, label, asPercent, series) {
  const element = document.getElementById(elementId);
  element.replaceChildren();
  const plot = new uPlot(
    {
      width: Math.max(200, element.clientWidth),
      height: 220,
      scales: {
        // The whole run on the x axis from the start (in epochs), so the curves grow into it.
        x: { time: false, range: () => [0, Math.max(1, job?.request?.epochs ?? 1)] },
        // Before any data: a plain 0..1 (rather than uPlot's guess around nothing).
        y: {
          range: (_u, min, max) => {
            if (min === null || max === null) return [0, 1];
            if (asPercent) return [Math.max(0, Math.min(min, 0.9) - 0.02), Math.min(1, max + 0.01)];
            const pad = Math.max(0.02, (max - min) * 0.08);
            return [Math.max(0, min - pad), max + pad];
          },
        },
      },
      legend: { live: false },
      // Epochs are whole numbers: ticks 1, 2, 5, … epochs apart, never at 1.2.
      axes: [
        { label: 'epoch', incrs: [1, 2, 5, 10, 20, 50] },
        { label, size: 60, values: tickLabels(element, asPercent) },
      ],
      series: [{ label: 'epoch' }, ...series],
      plugins: [epochMarksPlugin(element)],
    },
    [[], ...series.map(() => [])],
    element,
  );
  return { element, plot };
}

/**
 * uPlot wants one x array for all series: the loss curve's points (per batch) and
 * the epochs' points (at the end of each epoch) are merged, with gaps (null) where a
 * series has no value.
 */
function mergeSeries(...series) {
  const rows = new Map();
  series.forEach((points, index) => {
    for (const [x, y] of points) {
      if (!rows.has(x)) rows.set(x, new Array(series.length).fill(null));
      rows.get(x)[index] = y;
    }
  });
  const xs = [...rows.keys()].sort((a, b) => a - b);
  return [xs, ...series.map((_, index) => xs.map((x) => rows.get(x)[index]))];
}

function drawCurves() {
  const metrics = job?.metrics ?? [];
  const curve = job?.lossCurve?.points ?? [];
  const at = (key) => metrics.map((m) => [m.epoch, m[key]]);
  const [lossChart, accuracyChart] = charts;
  lossChart.plot.setData(mergeSeries(curve, at('trainLoss'), at('testLoss')));
  accuracyChart.plot.setData(mergeSeries(at('trainAccuracy'), at('testAccuracy')));
  for (const { element } of charts) {
    // For tests and scripts: how many epochs the chart shows.
    element.dataset.points = String(metrics.length);
  }
  lossChart.element.dataset.batchPoints = String(curve.length);
  const active = job?.state === 'active' || job?.state === 'queued';
  document.getElementById('chart-loss-note').hidden = !(active && curve.length === 0);
  document.getElementById('chart-accuracy-note').hidden = !(active && metrics.length === 0);
}

/** Where a job is, in the same words on the list and on its page. */
function epochSummary(job) {
  const p = job.progress;
  if (job.state === 'active' && p) return `Epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}`;
  return `${job.metrics?.length ?? 0}/${job.request?.epochs ?? '?'} epochs`;
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
      ? `${epochSummary(job)} · ${percent(p.fraction)} · loss ${p.runningLoss.toFixed(4)} · about ${Math.ceil(p.etaSeconds)} s left`
      : job.state === 'active'
        ? 'Loading the data set…'
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
  // An ended job stays ended: progress (or a state change) reported before the worker saw a
  // cancel can arrive after the cancel's answer, and would show the job active again, button and all.
  if (FINISHED.has(job.state) && (name === 'state' || name === 'progress')) return;
  if (name === 'state' || FINISHED.has(name)) job = { ...data, metrics: data.metrics ?? [] };
  else if (name === 'progress') {
    Object.assign(job, { state: 'active', progress: data.progress ?? job.progress, lossCurve: data.lossCurve ?? job.lossCurve });
    job.engine = data.engine ?? job.engine;
  }
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
      chart('chart-loss', 'loss', false, [
        { label: 'train, per batch', stroke: '#93c5fd', width: 1.5, spanGaps: true, points: { show: false } },
        epochPoints('train, epoch mean', '#2563eb'),
        epochPoints('test', '#ea580c'),
      ]),
      chart('chart-accuracy', 'accuracy', true, [epochPoints('train', '#2563eb'), epochPoints('test', '#ea580c')]),
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
