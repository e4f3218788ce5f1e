// Models: the registry's versions grouped by model name (GET /v1/models), each
// name's default first-class; promote a version to be its name's default (POST
// /v1/models/{name}/versions/{v}/promote; refused when it fails verification),
// delete one that is not a default, download its tfjs artifacts.
import { api, dateTime, download, h, percent, showError } from './api.js';

const listElement = document.getElementById('models-list');
const errorElement = document.getElementById('models-error');

const versionPath = (model) => `/v1/models/${encodeURIComponent(model.model)}/versions/${encodeURIComponent(model.version)}`;

/**
 * A link to an artifact. Clicking downloads it through api(), so it works when the
 * service wants an API key; the href stays for copying (tf.loadLayersModel(url)).
 * Saved under its own name: model.json refers to "weights.bin" next to it.
 */
function artifactLink(model, artifact) {
  const path = `${versionPath(model)}/${artifact}`;
  const link = h('a', { href: path, download: artifact }, artifact);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    download(path, artifact).catch((error) => showError(errorElement, error));
  });
  return link;
}

/** A button that runs `action` and reloads the list; shows the problem (e.g. a refused promotion) if it fails. */
function actionButton(label, className, action) {
  const button = h('button', { type: 'button', className }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action(button);
      showError(errorElement, null);
      await loadModels();
    } catch (error) {
      showError(errorElement, error);
      button.disabled = false;
    }
  });
  return button;
}

function modelCard(model) {
  const promote = actionButton('Make default', 'promote', () => api(`${versionPath(model)}/promote`, { method: 'POST' }));
  // Two clicks: the first only arms it, so a stray click never deletes a version.
  let armed = false;
  const remove = h('button', { type: 'button', className: 'secondary delete' }, 'Delete');
  remove.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      remove.textContent = 'Really delete?';
      return;
    }
    remove.disabled = true;
    try {
      await api(versionPath(model), { method: 'DELETE' });
      showError(errorElement, null);
      await loadModels();
    } catch (error) {
      showError(errorElement, error);
      remove.disabled = false;
    }
  });
  return h(
    'li',
    { className: `model-card${model.latest ? ' latest' : ''}`, 'data-version': model.version, 'data-model': model.model },
    h('div', { className: 'model-head' }, h('code', { className: 'model-version' }, model.version), model.latest ? h('span', { className: 'badge state-completed' }, 'default') : null),
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
      model.latest ? null : remove,
      h('span', { className: 'downloads' }, 'Download ', artifactLink(model, 'model.json'), ' · ', artifactLink(model, 'weights.bin')),
    ),
  );
}

function modelGroup(name, defaultVersion, versions) {
  return h(
    'section',
    { className: 'model-group', 'data-model': name },
    h('h2', {}, name, ' ', h('span', { className: 'muted' }, defaultVersion ? `default ${defaultVersion}` : 'no default version')),
    h('ul', { className: 'list model-versions' }, versions.map(modelCard)),
  );
}

async function loadModels() {
  try {
    const { models, names } = await api('/v1/models');
    listElement.replaceChildren(...names.map(({ name, defaultVersion }) => modelGroup(name, defaultVersion, models.filter((m) => m.model === name))));
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
