// Memory: the ledger per device (raw / model / training / suite of the budget), the held
// allocations with device and kind filters and a free button, and pool statistics.
import { api, ApiError, reportError, toast } from '../api.js';
import { h, setText, setChildren, fmtBytes, fmtTime, syncKeyed, throttle } from '../util.js';

const kKinds = ['raw', 'model', 'training', 'suite'];

function ledgerView(status) {
  const budget = status.budgetBytes || status.totalBytes || 1;
  const byKind = status.heldBytesByKind || {};
  const kinds = [...new Set([...kKinds, ...Object.keys(byKind)])];
  const bar = h(
    'div',
    { class: 'ledger-bar', role: 'img', 'aria-label': `held ${fmtBytes(status.heldBytes)} of ${fmtBytes(budget)}` },
    kinds
      .filter((k) => byKind[k] > 0)
      .map((k) => h('span', { class: `seg kind-${k}`, style: `width:${Math.min(100, (100 * byKind[k]) / budget).toFixed(2)}%`, title: `${k} ${fmtBytes(byKind[k])}` })),
  );
  const legend = h(
    'ul',
    { class: 'ledger-legend plain' },
    kinds.map((k) => h('li', { dataset: { kind: k } }, h('span', { class: `dot kind-${k}` }), `${k} ${fmtBytes(byKind[k] || 0)}`)),
  );
  const pool = status.pool || {};
  const facts = [
    ['budget', fmtBytes(status.budgetBytes)],
    ['held', fmtBytes(status.heldBytes)],
    ['available', fmtBytes(status.availableBytes)],
    ['driver used', fmtBytes(status.driverUsedBytes)],
    ['driver free', fmtBytes(status.driverFreeBytes)],
    ['allocations', String(status.allocationCount ?? '–')],
    ['allocator', `${status.allocator || '–'} (${status.poolStrategy || '–'})`],
    ['pool reserved', fmtBytes(pool.reservedBytes)],
    ['pool in use', fmtBytes(pool.inUseBytes)],
    ['pool cached', `${fmtBytes(pool.cachedBytes)} in ${pool.cachedBlocks ?? 0} blocks`],
    ['fragmentation', pool.fragmentationRatio === undefined ? '–' : `${(pool.fragmentationRatio * 100).toFixed(1)}%`],
    ['cache hits', String(pool.cacheHits ?? '–')],
    ['driver allocs / releases', `${pool.driverAllocations ?? '–'} / ${pool.driverReleases ?? '–'}`],
  ];
  return [bar, legend, h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]))];
}

export function createMemory(app) {
  const section = document.getElementById('memory');
  const note = section.querySelector('.section-note');
  const ledgers = section.querySelector('.ledgers');
  const tbody = section.querySelector('table.allocations tbody');
  const deviceFilter = section.querySelector('select[name="device"]');
  const kindFilter = section.querySelector('select[name="kind"]');
  const ledgerEls = new Map();
  const rows = new Map();
  let allocations = [];
  let lastHeld = null;

  function fillDeviceFilter(devices) {
    const current = deviceFilter.value;
    const ids = devices.map((d) => d.id);
    const options = [h('option', { value: '', text: 'all' }), ...ids.map((id) => h('option', { value: id, text: id }))];
    setChildren(deviceFilter, options);
    deviceFilter.value = ids.includes(current) ? current : '';
  }

  async function loadLedgers() {
    const devices = [...app.devices.values()];
    const statuses = await Promise.all(
      devices.map((d) => api(`/api/memory/${encodeURIComponent(d.id)}/status`).catch((err) => ({ deviceId: d.id, error: err }))),
    );
    syncKeyed(ledgers, ledgerEls, devices.map((d) => d.id), (id) =>
      h('article', { class: 'ledger card', dataset: { deviceId: id } }, h('h3', { text: id })),
    );
    for (const status of statuses) {
      const el = ledgerEls.get(status.deviceId);
      if (!el) continue;
      const title = h('h3', {}, (app.devices.get(status.deviceId) || {}).name || status.deviceId, ' ', h('code', { text: status.deviceId }));
      if (status.error) setChildren(el, title, h('p', { class: 'muted', text: status.error.message }));
      else setChildren(el, title, ledgerView(status));
    }
  }

  function renderAllocations() {
    const device = deviceFilter.value;
    const kind = kindFilter.value;
    const shown = allocations.filter((a) => (!device || a.deviceId === device) && (!kind || a.kind === kind));
    syncKeyed(tbody, rows, shown.map((a) => a.id), (id) => h('tr', { dataset: { allocationId: id } }));
    for (const a of shown) {
      const row = rows.get(a.id);
      const signature = `${a.deviceId}|${a.kind}|${a.sizeBytes}|${a.label}|${a.owner}`;
      if (row.dataset.signature === signature) continue;
      row.dataset.signature = signature;
      setChildren(
        row,
        h('td', {}, h('code', { text: a.id })),
        h('td', { text: a.deviceId }),
        h('td', { text: a.kind }),
        h('td', { class: 'num', text: fmtBytes(a.sizeBytes) }),
        h('td', { class: 'wrap', text: a.label || '' }),
        h('td', { text: a.owner || '' }),
        h('td', { text: fmtTime(a.createdAt) }),
        h('td', {}, h('button', { type: 'button', class: 'small danger', dataset: { action: 'free' }, 'aria-label': `free ${a.id}`, onclick: () => free(a.id, row) }, 'Free')),
      );
    }
    if (shown.length === 0 && !tbody.querySelector('tr.empty')) {
      tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 8, class: 'muted', text: allocations.length ? 'none match the filters' : 'no held allocations' })));
    } else if (shown.length > 0) {
      tbody.querySelector('tr.empty')?.remove();
    }
  }

  async function loadAllocations() {
    const result = await api('/api/memory/allocations?state=held&limit=1000');
    allocations = result.allocations || [];
    tbody.querySelector('tr.empty')?.remove();
    renderAllocations();
  }

  async function free(id, row) {
    const button = row.querySelector('button[data-action="free"]');
    if (button) button.disabled = true;
    try {
      await api(`/api/memory/${encodeURIComponent(id)}`, { method: 'DELETE' });
      toast(`freed ${id}`, 'info');
      allocations = allocations.filter((a) => a.id !== id);
      renderAllocations();
      refreshSoon();
    } catch (err) {
      if (button) button.disabled = false;
      reportError(`free ${id}`, err);
      if (err instanceof ApiError && err.status === 404) refreshSoon();
    }
  }

  async function load() {
    fillDeviceFilter([...app.devices.values()]);
    try {
      await Promise.all([loadLedgers(), loadAllocations()]);
      setText(note, '');
    } catch (err) {
      if (err instanceof ApiError && err.disabled) setText(note, `disabled: ${err.message}`);
      else throw err;
    }
  }

  const refreshSoon = throttle(() => load().catch(() => {}), 1500);

  function onSamples(payload) {
    // a change of the ledger's held bytes anywhere means allocations came or went
    const held = (payload.devices || []).map((d) => `${d.deviceId}:${JSON.stringify(d.heldBytesByKind || d.heldBytes)}`).join(',');
    if (lastHeld !== null && held !== lastHeld) refreshSoon();
    lastHeld = held;
  }

  function onEvent(event) {
    const type = event.type || '';
    if (/^(memory|model|training|suite)\./.test(type)) refreshSoon();
  }

  deviceFilter.addEventListener('change', renderAllocations);
  kindFilter.addEventListener('change', renderAllocations);
  app.on('devices', fillDeviceFilter);
  setInterval(() => {
    if (!document.hidden && app.live) refreshSoon();
  }, 15000);

  return { load, onSamples, onEvent };
}
