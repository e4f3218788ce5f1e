// Models: the registry's versions (GET /v1/models, newest first), promote one to
// be served (POST /v1/models/:version/promote), download its tfjs artifacts.
import { api, dateTime, download, h, percent, showError } from './api.js';

const listElement = document.getElementById('models-list');
const errorElement = document.getElementById('models-error');

const modelPath = (version) => `/v1/models/${encodeURIComponent(version)}`;

/**
 * A link to an artifact. Clicking downloads it through api(), so it works when the
 * service wants an API key; the href stays for copying (tf.loadLayersModel(url)).
 * Saved under its own name: model.json refers to "weights.bin" next to it.
 */
function artifactLink(version, artifact) {
  const path = `${modelPath(version)}/${artifact}`;
  const link = h('a', { href: path, download: artifact }, artifact);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    download(path, artifact).catch((error) => showError(errorElement, error));
  });
  return link;
}

function modelCard(model) {
  const promote = h('button', { type: 'button', className: 'promote' }, 'Promote');
  promote.addEventListener('click', async () => {
    promote.disabled = true;
    try {
      await api(`${modelPath(model.version)}/promote`, { method: 'POST' });
      showError(errorElement, null);
      await loadModels();
    } catch (error) {
      showError(errorElement, error);
      promote.disabled = false;
    }
  });
  return h(
    'li',
    { className: `model-card${model.latest ? ' latest' : ''}`, 'data-version': model.version },
    h('div', { className: 'model-head' }, h('code', { className: 'model-version' }, model.version), model.latest ? h('span', { className: 'badge state-completed' }, 'serving') : null),
    h('div', { className: 'model-accuracy' }, percent(model.testAccuracy, 2), h('span', { className: 'muted' }, ' test accuracy')),
    h(
      'dl',
      { className: 'facts' },
      h('dt', {}, 'Dataset'),
      h('dd', {}, model.dataset),
      h('dt', {}, 'Params'),
      h('dd', {}, model.trainableParams?.toLocaleString() ?? '–'),
      h('dt', {}, 'Epochs'),
      h('dd', {}, String(model.metrics?.length ?? '–')),
      h('dt', {}, 'Engine'),
      h('dd', {}, model.engine ?? '–'),
      h('dt', {}, 'Created'),
      h('dd', {}, dateTime(model.created)),
      h('dt', {}, 'Job'),
      h('dd', {}, model.jobId ? h('a', { href: `#jobs/${encodeURIComponent(model.jobId)}` }, h('code', {}, model.jobId.slice(0, 8))) : 'published by hand'),
    ),
    h(
      'div',
      { className: 'row' },
      model.latest ? null : promote,
      h('span', { className: 'downloads' }, 'Download ', artifactLink(model.version, 'model.json'), ' · ', artifactLink(model.version, 'weights.bin')),
    ),
  );
}

async function loadModels() {
  try {
    const { models } = await api('/v1/models');
    listElement.replaceChildren(...models.map(modelCard));
    document.getElementById('models-empty').hidden = models.length > 0;
    showError(errorElement, null);
  } catch (error) {
    showError(errorElement, error);
  }
}

export const modelsView = {
  enter() {
    void loadModels();
  },
};
