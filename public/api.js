// Every call the console makes goes through api(): it adds the API key when the
// service asked for one, and turns RFC 9457 problem+json answers into ApiErrors
// whose message a person can read.
/* global Headers, TextDecoderStream, Event */

const KEY_STORAGE = 'digits.apiKey';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problemMessage(status, problem));
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }
}

/** "detail" (or "title"), then one line per entry of "errors" when the service listed them. */
function problemMessage(status, problem) {
  const lines = [problem.detail || problem.title || `The service answered HTTP ${status}.`];
  for (const entry of Array.isArray(problem.errors) ? problem.errors : []) lines.push(`• ${describeEntry(entry)}`);
  return lines.join('\n');
}

function describeEntry(entry) {
  if (typeof entry !== 'object' || entry === null) return String(entry);
  const where = entry.path ?? entry.pointer ?? entry.field ?? entry.name;
  const place = Array.isArray(where) ? where.join('.') : where;
  const what = entry.message ?? entry.detail ?? JSON.stringify(entry);
  return place ? `${String(place).replace(/^\//, '')}: ${what}` : what;
}

async function readProblem(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') return body;
  } catch {
    // not JSON: fall through
  }
  return { title: response.statusText, detail: text.trim().slice(0, 300) || undefined };
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** Set in this tab once the service answered 401: it has API keys on. */
const KEYS_ON_STORAGE = 'digits.apiKeysOn';
/** Dispatched on window when the service is first seen to want API keys. */
export const API_KEYS_ON_EVENT = 'digits:api-keys-on';

/** Whether this service wants API keys, as far as this tab has seen (a 401, or a key already set). */
export function apiKeysOn() {
  return apiKey() !== null || sessionStorage.getItem(KEYS_ON_STORAGE) === 'yes';
}

function noteApiKeysOn() {
  if (sessionStorage.getItem(KEYS_ON_STORAGE) === 'yes') return;
  sessionStorage.setItem(KEYS_ON_STORAGE, 'yes');
  window.dispatchEvent(new Event(API_KEYS_ON_EVENT));
}

// One dialog at a time: requests that all got 401 at once wait for the same answer.
let keyPrompt = null;

/** Asks for an API key; resolves true when one was given (and stored), false otherwise. */
export function askForKey(reason) {
  keyPrompt ??= new Promise((resolve) => {
    const dialog = document.getElementById('key-dialog');
    const input = dialog.querySelector('input[name=key]');
    document.getElementById('key-dialog-reason').textContent = reason;
    input.value = apiKey() ?? '';
    dialog.addEventListener(
      'close',
      () => {
        const key = input.value.trim();
        if (dialog.returnValue === 'ok' && key) {
          sessionStorage.setItem(KEY_STORAGE, key);
          resolve(true);
          return;
        }
        if (dialog.returnValue === 'forget') sessionStorage.removeItem(KEY_STORAGE);
        resolve(false);
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
  }).finally(() => {
    keyPrompt = null;
  });
  return keyPrompt;
}

/**
 * Calls the service. `json` is sent as a JSON body, `body` as it is (a Blob keeps its
 * type). Resolves with the parsed JSON (or null for 204), or with the Response itself
 * when `raw` is set; rejects with ApiError. On a 401 it asks for a key and tries
 * again, unless `askForKeyOn401` is false (background refreshes must not pop dialogs).
 */
export async function api(path, { method = 'GET', json, body, headers = {}, signal, raw = false, askForKeyOn401 = true } = {}) {
  for (;;) {
    const requestHeaders = new Headers(headers);
    if (json !== undefined) requestHeaders.set('content-type', 'application/json');
    const key = apiKey();
    if (key) requestHeaders.set('authorization', `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: requestHeaders,
        body: json !== undefined ? JSON.stringify(json) : body,
        signal,
      });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, { title: 'Network error', detail: `Could not reach the service: ${error.message}` });
    }
    if (response.status === 401) {
      noteApiKeysOn();
      const problem = await readProblem(response);
      // Ask, then send the same request again with the new key; cancelling gives up.
      if (askForKeyOn401 && (await askForKey(problem.detail || 'This service needs an API key.'))) continue;
      throw new ApiError(401, problem);
    }
    if (!response.ok) throw new ApiError(response.status, await readProblem(response));
    if (raw) return response;
    if (response.status === 204) return null;
    const type = response.headers.get('content-type') ?? '';
    return type.includes('json') ? response.json() : response.text();
  }
}

/**
 * Follows a Server-Sent Events stream, calling onEvent(name, parsedData) per event,
 * until it ends or `signal` aborts. Read with fetch rather than EventSource, which
 * cannot send the Authorization header a service with API keys wants.
 */
export async function followEvents(path, onEvent, signal) {
  const response = await api(path, { headers: { accept: 'text/event-stream' }, signal, raw: true });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    // Events end with a blank line; keep an unfinished one for the next chunk.
    const events = buffer.split('\n\n');
    buffer = events.pop();
    for (const block of events) {
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      // Comment-only blocks (keep-alives) have no data.
      if (data.length > 0) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}

/** Saves a file from the service (through api(), so the API key goes along). */
export async function download(path, filename) {
  const blob = await (await api(path, { raw: true })).blob();
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Shows an error (ApiError or any other) in a message element; null hides it. */
export function showError(element, error) {
  element.hidden = !error;
  element.textContent = error ? error.message || String(error) : '';
}

// Formatting shared by the views.
export const percent = (fraction, digits = 1) =>
  typeof fraction === 'number' && Number.isFinite(fraction) ? `${(fraction * 100).toFixed(digits)}%` : '–';

export const dateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

/** document.createElement with properties, attributes (data-*, aria-*) and children. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('data-') || name.startsWith('aria-') || name === 'role') element.setAttribute(name, value);
    else element[name] = value;
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}
