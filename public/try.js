// Try it: draw on a canvas (pointer events: mouse, pen and touch alike) or upload
// an image; predictions come from POST /v1/predict?preprocess=mnist while you draw.
// Dark ink on a white pad, like a digit drawn on paper: preprocess=mnist inverts
// the light background, crops to the ink and centres it as MNIST expects.
/* global createImageBitmap */
import { api, h, percent, showError } from './api.js';

const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
/** At most one request in flight, and at least this long between two (rate limits, CPU). */
const MIN_INTERVAL_MS = 120;

const pad = document.getElementById('pad');
const context = pad.getContext('2d');
const errorElement = document.getElementById('try-error');
const emptyElement = document.querySelector('#prediction .prediction-empty');
const resultElement = document.querySelector('#prediction .prediction-result');

let blank = true;
let lastPoint = null;
/** What to predict next: 'pad' (the canvas as it is then) or an uploaded File. */
let nextInput = null;
let sending = false;
let lastSentAt = 0;

function clearPad() {
  context.fillStyle = '#fff';
  context.fillRect(0, 0, pad.width, pad.height);
  blank = true;
  nextInput = null;
  resultElement.hidden = true;
  emptyElement.hidden = false;
  showError(errorElement, null);
}

/** Pointer position in canvas pixels (the canvas is scaled by CSS). */
function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return { x: ((event.clientX - box.left) * pad.width) / box.width, y: ((event.clientY - box.top) * pad.height) / box.height };
}

const INK = '#111';
const PEN_WIDTH = pad.width / 14;

/** A round dot where the pen touches down: a zero-length line strokes nothing, which left the pad blank. */
function inkDot(at) {
  context.fillStyle = INK;
  context.beginPath();
  context.arc(at.x, at.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
  context.fill();
  blank = false;
}

function inkLine(from, to) {
  context.strokeStyle = INK;
  context.lineWidth = PEN_WIDTH;
  context.lineCap = 'round';
  context.lineJoin = 'round';
  context.beginPath();
  context.moveTo(from.x, from.y);
  context.lineTo(to.x, to.y);
  context.stroke();
  blank = false;
}

pad.addEventListener('pointerdown', (event) => {
  // One stroke at a time: a second finger on the pad is ignored.
  if (!event.isPrimary) return;
  pad.setPointerCapture(event.pointerId);
  lastPoint = padPoint(event);
  inkDot(lastPoint);
  predictSoon('pad');
});
pad.addEventListener('pointermove', (event) => {
  if (!lastPoint || !event.isPrimary) return;
  const point = padPoint(event);
  inkLine(lastPoint, point);
  lastPoint = point;
  predictSoon('pad');
});
for (const type of ['pointerup', 'pointercancel']) {
  pad.addEventListener(type, () => {
    if (!lastPoint) return;
    lastPoint = null;
    predictSoon('pad');
  });
}

document.getElementById('pad-clear').addEventListener('click', clearPad);

document.getElementById('pad-upload').addEventListener('change', async (event) => {
  const file = event.target.files?.[0];
  event.target.value = '';
  if (!file) return;
  clearPad();
  // Show the upload on the pad (fitted, on white); the file itself is what gets classified.
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    context.drawImage(bitmap, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
    blank = false;
  } catch {
    // The browser cannot show it; the service will say what is wrong with it.
  }
  predictSoon(file);
});

function padPng() {
  return new Promise((resolve) => pad.toBlob(resolve, 'image/png'));
}

function predictSoon(input) {
  nextInput = input;
  if (!sending) void sendPredictions();
}

async function sendPredictions() {
  sending = true;
  while (nextInput) {
    const wait = lastSentAt + MIN_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const input = nextInput;
    nextInput = null;
    if (input === 'pad' && blank) continue;
    const image = input === 'pad' ? await padPng() : input;
    lastSentAt = Date.now();
    try {
      const answer = await api('/v1/predict?preprocess=mnist', {
        method: 'POST',
        body: image,
        headers: { 'content-type': image.type || 'application/octet-stream' },
      });
      // A clear while the request was out means this answer is for a drawing that is gone.
      if (!blank) showPrediction(answer);
      showError(errorElement, null);
    } catch (error) {
      showError(errorElement, error);
    }
  }
  sending = false;
}

function showPrediction({ predictions, model }) {
  const prediction = predictions?.[0];
  if (!prediction) return;
  const names = model?.dataset === 'fashion-mnist' ? FASHION_LABELS : null;
  const name = (label) => (names ? names[label] : String(label));
  emptyElement.hidden = true;
  resultElement.hidden = false;
  document.getElementById('prediction-label').textContent = name(prediction.label);
  document.getElementById('prediction-confidence').textContent = `${percent(prediction.confidence)} sure`;
  const bars = document.getElementById('prediction-bars');
  bars.classList.toggle('named', names !== null);
  bars.replaceChildren(
    ...prediction.probabilities.map((probability, label) =>
      h(
        'li',
        { className: label === prediction.label ? 'top' : '', title: `${name(label)}: ${percent(probability, 2)}` },
        h('span', { className: 'bar-label' }, name(label)),
        h('span', { className: 'bar' }, h('span', { className: 'bar-fill', style: `width: ${(probability * 100).toFixed(1)}%` })),
        h('span', { className: 'bar-value' }, percent(probability, 0)),
      ),
    ),
  );
  document.getElementById('prediction-model').replaceChildren(
    'Answered by model ',
    h('a', { href: '#models' }, h('code', {}, model?.version ?? '?')),
    ` · ${model?.dataset ?? '?'} · test accuracy ${percent(model?.testAccuracy, 2)}`,
  );
}

clearPad();

export const tryView = {};
