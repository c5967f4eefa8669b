// The Mirrors section: a grid of repository × server from the status scrape: up, in sync or behind, latency, age.
import { api } from './api.js';
import { $, ago, el, fillRows, formatDuration, link } from './format.js';

/** One cell's words and colour: red for down, diverged or unhealthy; amber for behind; green for healthy. */
function verdict(status) {
  if (!status.reachable) return { className: 'bad', text: `down${status.error ? `: ${status.error.code}` : ''}` };
  const { state, behindRevisions } = status.sync;
  if (state === 'behind')
    return {
      className: 'warn',
      text: behindRevisions ? `behind by ${behindRevisions} revision${behindRevisions > 1 ? 's' : ''}` : 'behind',
    };
  if (state === 'diverged') return { className: 'bad', text: 'diverged' };
  if (!status.healthy) return { className: 'bad', text: status.error ? status.error.code : 'unhealthy' };
  return { className: 'ok', text: status.role === 'primary' ? 'up (primary)' : 'in sync' };
}

function cell(status) {
  if (!status) return el('td', { className: 'muted' }, '—');
  const { className, text } = verdict(status);
  const age = status.published ? formatDuration(Date.now() / 1000 - status.published) : null;
  return el(
    'td',
    { 'data-server': status.server, 'data-state': className },
    el('span', { className: `cell ${className}` }, text),
    el(
      'span',
      { className: 'muted' },
      [
        status.latencySeconds !== null ? `${Math.round(status.latencySeconds * 1000)} ms` : null,
        status.revision !== null ? `revision ${status.revision}` : null,
        age ? `published ${age} ago` : null,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  );
}

export async function refreshMirrors() {
  let report;
  try {
    report = await api('/api/1/status');
  } catch (error) {
    if (error.status !== 404) throw error;
    $('#scrape').textContent = 'Status scraping is off on this server (templates serve --scrape-interval).';
    fillRows($('#mirror-grid tbody'), [], 1, 'No scrape.');
    return;
  }
  const servers = report.servers.map((server) => server.name);
  const byRepository = new Map();
  for (const server of report.servers) {
    for (const status of server.repositories) {
      if (!byRepository.has(status.name)) byRepository.set(status.name, new Map());
      byRepository.get(status.name).set(server.name, status);
    }
  }
  const scraped = el(
    'span',
    {},
    'Last scrape ',
    ago(report.scrapedAt),
    report.healthy ? ': everything healthy.' : ': something needs a look.',
  );
  $('#scrape').replaceChildren(scraped, ' ', link(report._links.self.href, 'The JSON.'));
  $('#mirror-grid thead tr').replaceChildren(
    el('th', { scope: 'col' }, 'Repository'),
    ...servers.map((name) => el('th', { scope: 'col' }, name)),
  );
  const rows = [...byRepository]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, statuses]) =>
      el(
        'tr',
        { 'data-repository': name },
        el('th', { scope: 'row' }, name),
        ...servers.map((server) => cell(statuses.get(server))),
      ),
    );
  fillRows($('#mirror-grid tbody'), rows, servers.length + 1, 'No repository is scraped.');
}
