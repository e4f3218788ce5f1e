// The console's entry point: a hash router over the views (#try, #train, #jobs,
// #jobs/<id>, #models). Each view has enter(argument) and leave(), so timers and
// streams live only while their view is on screen.
/* global location */
import { API_KEYS_ON_EVENT, apiKey, apiKeysOn, askForKey } from './api.js';
import { jobsView, jobView } from './jobs.js';
import { modelsView } from './models.js';
import { trainView } from './train.js';
import { tryView } from './try.js';

const views = { try: tryView, train: trainView, jobs: jobsView, job: jobView, models: modelsView };
let current = null;

function route() {
  const [name = '', argument] = location.hash.replace(/^#\/?/, '').split('/');
  const viewName = name === 'jobs' && argument ? 'job' : name in views ? name : 'try';
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${viewName}`;
  for (const link of document.querySelectorAll('nav a')) {
    const active = link.dataset.view === (viewName === 'job' ? 'jobs' : viewName);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  current?.leave?.();
  current = views[viewName];
  current.enter?.(argument && decodeURIComponent(argument));
}

const keyButton = document.getElementById('api-key-button');
const showKeyButton = () => {
  keyButton.hidden = !apiKeysOn();
};
showKeyButton();
window.addEventListener(API_KEYS_ON_EVENT, showKeyButton);
keyButton.addEventListener('click', () => {
  void askForKey(apiKey() ? 'Replace or forget the key this tab sends.' : 'Set the key this tab sends with requests that need one.');
});

window.addEventListener('hashchange', route);
route();
