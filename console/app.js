// The console: login, a hash router over the views, and the live event
// stream that keeps them current.

import { ApiError, api, followEvents, token } from './api.js';
import { catalogView, setUpdates } from './catalog.js';
import { clusterView } from './cluster.js';
import { failed, fill, h, toast } from './dom.js';
import { eventsView, recordEvent } from './events.js';
import { flowView } from './flow.js';
import { namespacesView } from './namespaces.js';
import { pluginDetailView, pluginsView } from './plugins.js';
import { session } from './session.js';
import { tokensView } from './tokens.js';

const main = document.getElementById('view');
const live = document.getElementById('live');
const alertCount = document.getElementById('alert-count');
const storeDown = document.getElementById('store-down');
const isolationBanner = document.getElementById('isolation-banner');
const whoami = document.getElementById('whoami');
let current = null; // the view on screen: { dispose?, onEvent? }
let routing = Promise.resolve();
let wanted = 0;
let unseenAlerts = 0;
let stopEvents = null;

function loginView(message) {
  document.getElementById('logout').hidden = true;
  session.set(null);
  whoami.hidden = true;
  const input = h('input', {
    type: 'password',
    id: 'token',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { class: 'bad', id: 'login-error', role: 'alert' }, message ?? '');
  fill(
    main,
    h(
      'form',
      {
        class: 'login card',
        onsubmit: async (e) => {
          e.preventDefault();
          const ok = await tryToken(input.value.trim());
          if (ok) start();
          else {
            fill(
              error,
              'That token was refused. Use the one ',
              h('code', {}, 'databridge serve'),
              ' printed (or the one in ',
              h('code', {}, '<data dir>/admin.token'),
              ').',
            );
            input.select();
          }
        },
      },
      h('h1', {}, 'DataBridge console'),
      h('p', {}, 'Sign in with the token from the link ', h('code', {}, 'databridge serve'), ' printed.'),
      h('label', { for: 'token' }, 'Token'),
      input,
      error,
      h('button', { type: 'submit' }, 'Sign in'),
    ),
  );
  input.focus();
}

async function tryToken(t) {
  if (!t) return false;
  try {
    session.set(await api('/whoami', { tokenOverride: t }));
    token.set(t);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

/**
 * Shows the view the address names. One view is made at a time, in order,
 * and an address that changed again while one was loading is skipped for
 * the newest, so the page always ends on the view the address names.
 */
function route() {
  const seq = ++wanted;
  routing = routing.then(() => (seq === wanted ? show() : undefined)).catch(failed);
  return routing;
}

async function show() {
  current?.dispose?.();
  current = null;
  const hash = location.hash || '#/plugins';
  const [, view, arg] = hash.split('/');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'events') {
    unseenAlerts = 0;
    alertCount.hidden = true;
  }
  try {
    if (view === 'plugins' && arg) current = await pluginDetailView(main, decodeURIComponent(arg), () => void route());
    else if (view === 'catalog') current = await catalogView(main);
    else if (view === 'namespaces') current = await namespacesView(main);
    else if (view === 'flow') current = await flowView(main);
    else if (view === 'events') current = await eventsView(main);
    else if (view === 'cluster') current = await clusterView(main);
    else if (view === 'tokens') current = await tokensView(main);
    else current = await pluginsView(main);
    main.focus({ preventScroll: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      token.clear();
      stopEvents?.();
      loginView('Your session has ended; sign in again.');
      return;
    }
    if (err instanceof ApiError && err.status === 403) {
      // a page this token's role may not see: said plainly, not as a failure
      fill(main, h('h1', {}, 'Not for this token'), h('p', { role: 'status' }, err.message));
      return;
    }
    fill(
      main,
      h('h1', {}, 'Something went wrong'),
      h('p', { class: 'bad', role: 'alert' }, `${err.code ?? 'ERROR'}: ${err.message}`),
    );
  }
}

function onEvent(e) {
  recordEvent(e);
  if (e.type === 'catalog.updates') setUpdates(e.data);
  if (e.type === 'alert') {
    toast(`${e.data.code} · ${e.data.plugin}: ${e.data.message}`, 'bad');
    if (!location.hash.startsWith('#/events')) {
      unseenAlerts++;
      alertCount.textContent = String(unseenAlerts);
      alertCount.hidden = false;
    }
  }
  // the view on screen follows the events it shows (the plugins table: installs, removals, status)
  current?.onEvent?.(e);
}

function start() {
  document.getElementById('logout').hidden = false;
  const who = session.get();
  whoami.hidden = !who;
  whoami.textContent = who ? `${who.name} · ${who.role}` : '';
  whoami.title = who ? `Signed in with the token ${who.name} (role ${who.role})` : '';
  document.getElementById('nav-tokens').hidden = !session.can('admin');
  stopEvents?.();
  stopEvents = followEvents(onEvent, (state) => {
    live.textContent = state === 'live' ? '● live' : '○ reconnecting';
    live.className = `live live-${state}`;
  });
  window.onhashchange = () => void route();
  void route();
  watchStore();
}

/**
 * Every page says so when this host cannot confine process sandboxes fully:
 * a warning when the operator accepted weaker isolation (plugins run with
 * what holds), a note when such plugins are refused instead.
 */
function showIsolation(isolation) {
  const missing = isolation?.missing?.join('; ') ?? '';
  if (!isolation || isolation.level === 'full') {
    isolationBanner.hidden = true;
    return;
  }
  isolationBanner.hidden = false;
  isolationBanner.className = `isolation-banner ${isolation.weakAccepted ? 'weak' : 'refusing'}`;
  isolationBanner.textContent = isolation.weakAccepted
    ? `Weaker isolation accepted: this host confines process sandboxes only partly (${isolation.level}); plugins run with what holds. Missing: ${missing}.`
    : `This host cannot confine process sandboxes fully (${isolation.level}): plugins that need one are refused (ISOLATION_UNAVAILABLE). Missing: ${missing}.`;
}

/** Every page says so while the state store is away (the node runs on; changes are refused). */
let storeTimer = null;
function watchStore() {
  clearInterval(storeTimer);
  const check = async () => {
    try {
      const health = await (await fetch('/healthz')).json();
      storeDown.hidden = health.store?.up !== false;
      storeDown.title =
        health.store?.up === false
          ? `The ${health.store.kind} state store does not answer: plugins keep running, changes are refused until it is back`
          : '';
      showIsolation(health.isolation);
    } catch {
      // the server itself is away: the live indicator says so
    }
  };
  void check();
  storeTimer = setInterval(check, 3000);
}

document.getElementById('logout').addEventListener('click', () => {
  token.clear();
  stopEvents?.();
  live.textContent = '○ offline';
  loginView('Signed out.');
});

// a token in the address bar (the link serve prints) is taken, kept for this tab, and removed from the bar
const params = new URLSearchParams(location.search);
const fromUrl = params.get('token');
if (fromUrl !== null) {
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
}
const candidate = fromUrl ?? token.get();
if (candidate && (await tryToken(candidate).catch(() => false))) start();
else loginView(fromUrl ? 'The token in the link was refused. Paste the current one.' : undefined);
