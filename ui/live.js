// Fetches, pulls and jobs as they happen: lists loaded once per connection, then kept current by the event stream.
import { api } from './api.js';
import { $, ago, bytesData, el, fillRows, formatBytes, formatDuration, keepFocus } from './format.js';

/** What the page knows; `user` decides whose jobs get renew and delete buttons. */
export const live = {
  transfers: new Map(),
  recent: [],
  jobs: new Map(),
  rates: new Map(),
  user: 'anonymous',
  onError: () => {},
};

const RESULT_CLASS = { downloaded: 'ok', cached: 'ok', failed: 'bad' };
const STATE_CLASS = { wait: 'warn', fetching: 'warn', done: 'ok', removed: 'muted', failed: 'bad' };

/** A link that keeps focus across re-renders (`key` is unique on the page). */
const link = (href, key, text) => el('a', { href, 'data-key': key }, text);

function what(transfer, where) {
  return transfer._links.job
    ? link(transfer._links.job.href, `${where}-${transfer.id}`, `job ${transfer.job}: ${transfer.ref}`)
    : transfer._links.version
      ? link(transfer._links.version.href, `${where}-${transfer.id}`, transfer.ref)
      : transfer.ref;
}

function rateOf(transfer) {
  const previous = live.rates.get(transfer.id);
  const now = Date.now();
  const rate =
    previous && now > previous.at ? ((transfer.bytes - previous.bytes) * 1000) / (now - previous.at) : previous?.rate;
  live.rates.set(transfer.id, { at: now, bytes: transfer.bytes, rate: rate ?? 0 });
  return rate ?? 0;
}

const since = (iso) => formatDuration((Date.now() - Date.parse(iso)) / 1000);
const left = (iso) => {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  return seconds > 0 ? formatDuration(seconds) : 'expiring';
};

function renderInFlight() {
  const items = [...live.transfers.values()].map((transfer) => {
    const label = `progress-${transfer.id}`;
    const rate = live.rates.get(transfer.id)?.rate ?? 0;
    const amount = transfer.total
      ? `${formatBytes(transfer.bytes)} of ${formatBytes(transfer.total)}`
      : formatBytes(transfer.bytes);
    return el(
      'li',
      { 'data-transfer': transfer.id },
      el(
        'span',
        { id: label },
        what(transfer, 'flight'),
        ` (${transfer.kind}${transfer.source ? `, from ${transfer.source}` : ''})`,
      ),
      el('progress', {
        'aria-labelledby': label,
        max: transfer.total ?? undefined,
        value: transfer.total ? transfer.bytes : undefined,
      }),
      el(
        'span',
        { className: 'muted' },
        `${amount}${rate ? `, ${formatBytes(rate)}/s` : ''}, for `,
        el('time', { 'data-since': transfer.started_at }, since(transfer.started_at)),
      ),
    );
  });
  keepFocus($('#in-flight'), () =>
    $('#in-flight').replaceChildren(
      ...(items.length ? items : [el('li', { className: 'muted' }, 'Nothing is being fetched.')]),
    ),
  );
}

function renderRecent() {
  const rows = live.recent.map((transfer) =>
    el(
      'tr',
      { 'data-transfer': transfer.id },
      el('th', { scope: 'row' }, what(transfer, 'recent')),
      el(
        'td',
        {},
        el(
          'span',
          { className: `state ${RESULT_CLASS[transfer.result] ?? ''}`, title: transfer.message ?? undefined },
          transfer.code && transfer.result === 'failed' ? `failed: ${transfer.code}` : transfer.result,
        ),
      ),
      el('td', { className: 'num' }, formatDuration(transfer.seconds)),
      el('td', {}, transfer.source ?? el('span', { className: 'muted' }, 'unknown')),
      el('td', { className: 'num' }, bytesData(transfer.bytes)),
      el('td', {}, ago(transfer.ended_at)),
    ),
  );
  keepFocus($('#recent'), () => fillRows($('#recent tbody'), rows, 6, 'Nothing fetched since the server started.'));
}

export function onTransfer(transfer) {
  if (transfer.result) {
    live.transfers.delete(transfer.id);
    live.rates.delete(transfer.id);
    live.recent = [transfer, ...live.recent.filter((t) => t.id !== transfer.id)].slice(0, 50);
    renderRecent();
  } else {
    rateOf(transfer);
    live.transfers.set(transfer.id, transfer);
  }
  renderInFlight();
}

async function act(job, method, body) {
  try {
    await api(`/api/1/jobs/${job.id}`, {
      method,
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
  } catch (error) {
    live.onError(error);
  }
}

function actions(job) {
  const mine = job.owner === live.user;
  const open = job.state_name === 'wait' || job.state_name === 'fetching' || job.state_name === 'done';
  if (!mine || !open) return el('span', { className: 'muted' }, mine ? '—' : `${job.owner}'s`);
  const renew = el(
    'button',
    {
      type: 'button',
      className: 'secondary',
      'data-key': `renew-${job.id}`,
      'aria-label': `Renew job ${job.id} for ${formatDuration(job.seconds_to_live)}`,
    },
    'Renew',
  );
  renew.addEventListener('click', () => act(job, 'PATCH', { seconds_to_live: job.seconds_to_live }));
  const remove = el(
    'button',
    { type: 'button', className: 'secondary', 'data-key': `delete-${job.id}`, 'aria-label': `Delete job ${job.id}` },
    'Delete',
  );
  remove.addEventListener('click', () => {
    if (confirm(`Delete job ${job.id}? What it holds may then be pruned.`)) void act(job, 'DELETE');
  });
  return el('div', { className: 'actions' }, renew, remove);
}

function timeLeft(job) {
  if (!job.time_to_expire || job.state_name === 'removed' || job.state_name === 'failed')
    return el('span', { className: 'muted' }, '—');
  return el(
    'time',
    { datetime: job.time_to_expire, title: job.time_to_expire, 'data-until': job.time_to_expire },
    left(job.time_to_expire),
  );
}

export function renderJobs() {
  const jobs = [...live.jobs.values()].sort((a, b) => b.id - a.id);
  const rows = jobs.map((job) =>
    el(
      'tr',
      { 'data-job': job.id, 'data-state': job.state_name },
      el('th', { scope: 'row' }, link(`/api/1/jobs/${job.id}`, `job-${job.id}`, `#${job.id}`)),
      el(
        'td',
        {},
        el(
          'span',
          { className: `state ${STATE_CLASS[job.state_name] ?? ''}`, title: job.state_reason ?? undefined },
          job.state_name,
        ),
        job.state_name === 'fetching' && job.progress.total
          ? el('progress', {
              max: job.progress.total,
              value: job.progress.bytes,
              'aria-label': `job ${job.id} progress`,
            })
          : null,
      ),
      el('td', {}, job.owner),
      el('td', {}, job.label ?? el('span', { className: 'muted' }, 'none')),
      el('td', {}, job.refs.map((ref) => ref.version).join(', ')),
      el('td', {}, timeLeft(job)),
      el('td', {}, actions(job)),
    ),
  );
  keepFocus($('#jobs-table'), () => fillRows($('#jobs-table tbody'), rows, 7, 'No jobs yet.'));
}

export function onJob(job) {
  live.jobs.set(job.id, job);
  renderJobs();
}

/** Both lists from the API (at start and after each reconnection of the event stream). */
export async function reloadLive() {
  const [transfers, jobs] = await Promise.all([api('/api/1/transfers'), api('/api/1/jobs?per_page=50')]);
  live.transfers = new Map(transfers.in_flight.map((t) => [t.id, t]));
  live.recent = transfers.recent;
  live.jobs = new Map(jobs.items.map((job) => [job.id, job]));
  renderInFlight();
  renderRecent();
  renderJobs();
}

/** Each second: time left and durations move on, in place (nothing re-rendered, focus untouched). */
export function tick() {
  for (const node of document.querySelectorAll('time[data-since]'))
    node.textContent = since(node.getAttribute('data-since'));
  for (const node of document.querySelectorAll('time[data-until]'))
    node.textContent = left(node.getAttribute('data-until'));
}
