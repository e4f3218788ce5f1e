// Train: a form for POST /v1/jobs. It names a recipe preset (`fast` unless changed);
// blank fields are left out, so the service fills in that preset's values (the page
// keeps no copy of them). The service checks the values; its problem+json answer is
// shown as it is.
/* global crypto, location, FormData */
import { api, showError } from './api.js';

const form = document.getElementById('train-form');
const errorElement = document.getElementById('train-error');
const NUMBER_FIELDS = ['epochs', 'batchSize', 'learningRate', 'momentum', 'limit', 'minAccuracy'];

/** The request body: blank fields are left out (the service's defaults apply). */
function jobRequest() {
  const data = new FormData(form);
  const request = {};
  for (const [name, raw] of data) {
    const value = String(raw).trim();
    if (value === '') continue;
    // A number field with text in it goes as text, so the service's message names it.
    request[name] = NUMBER_FIELDS.includes(name) && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return request;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  showError(errorElement, null);
  try {
    // A fresh key per submission: a retried request (e.g. after asking for an API key) cannot start a second job.
    const idempotencyKey = crypto.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const answer = await api('/v1/jobs', { method: 'POST', json: jobRequest(), headers: { 'idempotency-key': idempotencyKey } });
    const job = answer.job ?? answer;
    location.hash = `#jobs/${encodeURIComponent(job.id)}`;
  } catch (error) {
    showError(errorElement, error);
  } finally {
    button.disabled = false;
  }
});

form.addEventListener('reset', () => showError(errorElement, null));

export const trainView = {};
