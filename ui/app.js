// The dashboard: sign in when the API needs it, load every section, follow the event stream, refresh what it does not carry.
import { Unauthorized, api, followEvents, session, signIn, signOut } from './api.js';
import { $, link } from './format.js';
import { live, onJob, onTransfer, reloadLive, tick } from './live.js';
import { refreshMirrors } from './mirrors.js';
import { refreshStore } from './store.js';

const STORE_EVERY_MS = 10_000;
// Each scrape also announces itself on the event stream; this catches a dropped stream.
const MIRRORS_EVERY_MS = 30_000;

let running;

function say(text) {
  $('#who').textContent = text;
}

function showLocked(locked) {
  for (const note of document.querySelectorAll('.locked')) note.hidden = !locked;
  $('#signin').hidden = !locked;
  $('#signout').hidden = locked || !session();
}

/** With --anonymous read, the repositories anyone may fetch are public: show them while signed out. */
async function showPublic() {
  try {
    const { repositories } = await api('/repos/');
    say('');
    $('#who').append(
      'Signed out. Public here: ',
      ...repositories.flatMap((r, i) => [i ? ', ' : '', link(r.url, r.name)]),
      '.',
    );
  } catch {
    say('Signed out: sign in to see this server.');
  }
}

/** Runs `fn` every `ms` until `signal` aborts; a 401 stops everything and asks for credentials. */
function every(ms, fn, signal) {
  const run = () => fn().catch(failed);
  void run();
  const timer = setInterval(run, ms);
  signal.addEventListener('abort', () => clearInterval(timer));
}

function failed(error) {
  if (error instanceof Unauthorized) return void locked();
  say(`Could not load a figure: ${error.message}`);
}

function locked() {
  running?.abort();
  running = undefined;
  signOut();
  showLocked(true);
  void showPublic();
}

async function start() {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  try {
    await api('/api/1/store');
  } catch (error) {
    return failed(error);
  }
  live.user = session()?.user ?? 'anonymous';
  showLocked(false);
  say(session() ? `Signed in as ${live.user}.` : "This server's API is open: no sign-in needed.");
  every(STORE_EVERY_MS, refreshStore, controller.signal);
  every(MIRRORS_EVERY_MS, refreshMirrors, controller.signal);
  const timer = setInterval(tick, 1000);
  controller.signal.addEventListener('abort', () => clearInterval(timer));
  followEvents((name, data) => {
    if (name === 'hello') void reloadLive().catch(failed);
    else if (name === 'transfer') onTransfer(data);
    else if (name === 'job') onJob(data);
    else if (name === 'status') void refreshMirrors().catch(failed);
  }, controller.signal).catch(failed);
}

function wire() {
  $('#host').textContent = `on ${location.host}`;
  live.onError = (error) => failed(error);
  $('#signin').addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = $('#signin button');
    button.disabled = true;
    $('#signin-error').textContent = '';
    try {
      await signIn($('#user').value, $('#password').value);
      $('#password').value = '';
      await start();
    } catch (error) {
      $('#signin-error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
  $('#signout').addEventListener('click', () => {
    locked();
    $('#user').focus();
  });
  void start();
}

wire();
