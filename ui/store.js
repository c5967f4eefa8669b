// The Store section: totals, disk use per repository, the largest versions, what each client format was served, prune.
import { api } from './api.js';
import { $, ago, bytesData, el, fillRows, formatBytes, formatDuration, link } from './format.js';

function figure(label, value, href) {
  return el('div', {}, el('dt', {}, label), el('dd', {}, link(href, value)));
}

/** Every stored version of the usage API's embedded tree, with its repository and template. */
function versionsOf(root) {
  return (root._embedded?.items ?? []).flatMap((repository) =>
    (repository._embedded?.items ?? []).flatMap((template) =>
      (template._embedded?.items ?? []).map((version) => ({
        ...version,
        ref: `${repository.name}:${template.name}:${version.name}`,
      })),
    ),
  );
}

function renderTotals(store) {
  $('#store-totals').replaceChildren(
    figure('Stored versions', el('data', { value: store.entries }, String(store.entries)), '/api/1/store'),
    figure('Size', bytesData(store.size), '/api/1/store'),
    figure('On disk', bytesData(store.disk_size), '/api/1/store'),
    figure('Free', bytesData(store.free), '/api/1/store'),
    figure('Filesystem', bytesData(store.total), '/api/1/store'),
  );
}

function renderPerRepository(root) {
  const repositories = root._embedded?.items ?? [];
  const largest = Math.max(1, ...repositories.map((r) => Math.max(r.size, r.disk_size)));
  const rows = repositories.map((repository) => {
    const share = repository.size ? Math.round((repository.disk_size / repository.size) * 100) : 0;
    const bar = el(
      'div',
      { className: 'bar', role: 'img', 'aria-label': `${repository.name}: on disk ${share}% of its size` },
      el('span', { className: 'size', style: { width: `${(repository.size / largest) * 100}%` } }),
      el('span', { className: 'disk', style: { width: `${(repository.disk_size / largest) * 100}%` } }),
    );
    return el(
      'tr',
      { 'data-repository': repository.name },
      el('th', { scope: 'row' }, link(repository._links.self.href, repository.name)),
      el('td', { className: 'num' }, bytesData(repository.size)),
      el('td', { className: 'num' }, bytesData(repository.disk_size)),
      el('td', {}, bar, el('span', { className: 'muted' }, `${share}%`)),
    );
  });
  fillRows($('#per-repo tbody'), rows, 4, 'Nothing is stored yet.');
}

function renderLargest(root) {
  const versions = versionsOf(root)
    .sort((a, b) => b.disk_size - a.disk_size || b.size - a.size)
    .slice(0, 10);
  const rows = versions.map((version) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, link(version._links.self.href, version.ref)),
      el('td', { className: 'num' }, bytesData(version.size)),
      el('td', { className: 'num' }, bytesData(version.disk_size)),
      el('td', {}, ago(version.last_used)),
      // Users are paths (a job's hold, a VM's disk): the last part names it, the whole path is its title.
      el(
        'td',
        { title: version.users.join('\n') || undefined },
        version.users.length
          ? version.users.map((user) => user.split('/').pop()).join(', ')
          : el('span', { className: 'muted' }, 'none'),
      ),
    ),
  );
  fillRows($('#largest tbody'), rows, 5, 'Nothing is stored yet.');
}

function describePolicy(policy) {
  const parts = [
    policy.older_than_seconds !== null && `not used for ${formatDuration(policy.older_than_seconds)}`,
    policy.keep !== null && `beyond the newest ${policy.keep} of each template`,
    policy.max_bytes !== null &&
      `least recently used while the store takes over ${formatBytes(policy.max_bytes)} on disk`,
  ].filter(Boolean);
  return parts.length
    ? `Policy: ${parts.join('; ')}. This server removes nothing itself; templates prune does.`
    : 'No prune policy is configured (pruneOlderThanSeconds, pruneKeep, pruneMaxBytes): prune would take nothing. Oldest use first below would go first under a size limit.';
}

function renderPrune(plan, root) {
  $('#policy').textContent = describePolicy(plan.policy);
  const configured = Object.values(plan.policy).some((value) => value !== null);
  // Without a policy, the least recently used versions: what a size limit would take first.
  const items = configured
    ? [...plan.next, ...plan.kept.map((item) => ({ ...item, kept: true }))]
    : versionsOf(root)
        .sort((a, b) => Date.parse(a.last_used) - Date.parse(b.last_used))
        .slice(0, 5)
        .map((v) => ({
          ref: v.ref,
          disk_size: v.disk_size,
          last_used: v.last_used,
          reason: 'least recently used',
          _links: { version: v._links.self },
        }));
  const rows = items.map((item) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row' }, link(item._links.version.href, item.ref)),
      el('td', { className: 'num' }, bytesData(item.disk_size)),
      el('td', {}, ago(item.last_used)),
      el('td', {}, item.kept ? el('span', { className: 'muted' }, `kept: ${item.reason}`) : item.reason),
    ),
  );
  fillRows($('#prune-next tbody'), rows, 4, 'Nothing would go now.');
}

/** What lago's repositories, casync, simplestreams, Vagrant and virt-builder clients were served. */
function renderFormats(served) {
  const rows = served.formats.map((row) =>
    el(
      'tr',
      { 'data-format': row.format },
      el('th', { scope: 'row' }, link(served._links.self.href, row.format)),
      el('td', { className: 'num' }, el('data', { value: row.requests }, String(row.requests))),
      el('td', { className: 'num' }, bytesData(row.bytes)),
    ),
  );
  fillRows($('#formats tbody'), rows, 3, 'Nothing served yet.');
}

export async function refreshStore() {
  const [store, root, plan, served] = await Promise.all([
    api('/api/1/store'),
    api('/api/1/repositories?embed=true&links=true'),
    api('/api/1/prune'),
    api('/api/1/formats'),
  ]);
  renderTotals(store);
  renderFormats(served);
  renderPerRepository(root);
  renderLargest(root);
  renderPrune(plan, root);
}
