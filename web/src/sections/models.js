// Models: loaded models with placements, memory, request counts, rates and latency histograms
// (from /metrics), a load form (validated before sending), unload buttons and evictions.
import { api, apiResponse, ApiError, reportError, toast } from '../api.js';
import { h, setText, setChildren, fmtBytes, fmtNumber, fmtTime, syncKeyed, throttle } from '../util.js';

const kMaxEvictions = 20;

/** Parses deviceops_inference_request_seconds_bucket lines: "name:version" -> [{le, count}]. */
export function parseLatencyBuckets(text) {
  const out = new Map();
  const re = /^deviceops_inference_request_seconds_bucket\{([^}]*)\}\s+([0-9.eE+-]+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const key = `${labels.model}:${labels.version}`;
    if (!out.has(key)) out.set(key, []);
    out.get(key).push({ le: labels.le === '+Inf' ? Infinity : Number(labels.le), count: Number(m[2]) });
  }
  for (const buckets of out.values()) buckets.sort((a, b) => a.le - b.le);
  return out;
}

/** The upper bound of the bucket holding quantile q (cumulative buckets). */
function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (!total) return null;
  const rank = q * total;
  for (const b of buckets) if (b.count >= rank) return b.le;
  return Infinity;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return '–';
  if (!Number.isFinite(s)) return '> 10 s';
  if (s < 0.001) return `≤ ${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `≤ ${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`;
  return `≤ ${s} s`;
}

function histogramView(buckets) {
  if (!buckets || !buckets.length || !buckets[buckets.length - 1].count) return h('span', { class: 'muted', text: '–' });
  const counts = buckets.map((b, i) => b.count - (i ? buckets[i - 1].count : 0));
  const peak = Math.max(...counts, 1);
  const bars = h(
    'span',
    { class: 'histogram', 'aria-hidden': 'true' },
    counts.map((c, i) => h('span', { style: `height:${Math.round((100 * c) / peak)}%`, title: `${fmtSeconds(buckets[i].le)}: ${c}` })),
  );
  return h('span', { class: 'latency' }, bars, h('span', { text: `p50 ${fmtSeconds(quantile(buckets, 0.5))} · p95 ${fmtSeconds(quantile(buckets, 0.95))}` }));
}

/** Checks the load form; returns an error message or null. */
export function validateLoad(path, name) {
  if (!path) return 'give a model path (under a model root) or a repository model name';
  if (path.length > 4096) return 'the path is longer than 4096 characters';
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'the path has control characters';
  if (name) {
    if (name.length > 128) return 'the name is longer than 128 characters';
    if (name.startsWith('.') || /[/\\\u0000-\u001f\u007f]/.test(name)) return 'the name may not start with "." or hold "/", "\\" or control characters';
  }
  return null;
}

export function createModels(app) {
  const section = document.getElementById('models');
  const note = section.querySelector('.section-note');
  const form = section.querySelector('form.load-model');
  const tbody = section.querySelector('table.models tbody');
  const datalist = section.querySelector('#model-files');
  const evictions = section.querySelector('ul.evictions');
  const rows = new Map();
  const previous = new Map(); // id -> {count, time} for request rates
  let repositoryNames = new Set();
  let latency = new Map();
  let disabled = false;

  async function loadRepository() {
    try {
      const index = await api('/v2/repository/index', { method: 'POST', body: {} });
      repositoryNames = new Set((index || []).map((e) => e.name));
      setChildren(datalist, [...repositoryNames].sort().map((n) => h('option', { value: n })));
    } catch {
      // the list is a convenience: paths still work without it
    }
  }

  async function loadLatency() {
    try {
      const response = await apiResponse('/metrics');
      latency = parseLatencyBuckets(await response.text());
    } catch {
      latency = new Map();
    }
  }

  function render(models) {
    syncKeyed(tbody, rows, models.map((m) => m.id), (id) => h('tr', { dataset: { modelId: id } }));
    const now = performance.now() / 1000;
    for (const m of models) {
      const row = rows.get(m.id);
      const stats = m.statistics || {};
      const count = stats.inferenceCount || 0;
      const before = previous.get(m.id);
      let rate = null;
      if (before && now > before.time) rate = Math.max(0, (count - before.count) / (now - before.time));
      previous.set(m.id, { count, time: now });
      const avgMs = count ? stats.requestMsTotal / count : null;
      const flags = [m.evicted ? 'evicted' : null, m.pinned ? 'pinned' : null, m.persist ? 'persist' : null, m.holds ? `held by ${m.holds}` : null].filter(Boolean);
      setChildren(
        row,
        h('td', {}, h('strong', { text: `${m.name}:${m.version}` }), h('br'), h('code', { class: 'muted wrap', text: m.id })),
        h('td', {}, h('span', { class: `state state-${m.state}`, text: m.state }), flags.length ? h('div', { class: 'muted', text: flags.join(', ') }) : null, m.stateReason ? h('div', { class: 'muted wrap', text: m.stateReason }) : null),
        h('td', {}, h('ul', { class: 'plain' }, (m.placements || []).map((p) => h('li', { text: `${p.deviceId} · ${p.provider} ×${p.instances ?? 1} · ${fmtBytes(p.chargedBytes)}` })))),
        h('td', { class: 'num', text: fmtBytes(m.chargedBytes) }),
        h('td', { class: 'num', text: `${count}${stats.failureCount ? ` (${stats.failureCount} failed)` : ''}${m.inFlight ? ` · ${m.inFlight} in flight` : ''}` }),
        h('td', { class: 'num', text: rate === null ? '–' : `${fmtNumber(rate, 2)}/s` }),
        h('td', {}, h('div', { class: 'muted', text: avgMs === null ? '' : `avg ${fmtNumber(avgMs, 2)} ms` }), histogramView(latency.get(`${m.name}:${m.version}`))),
        h('td', {}, h('button', { type: 'button', class: 'small danger', dataset: { action: 'unload' }, 'aria-label': `unload ${m.name}`, disabled: m.state === 'unloading' || m.state === 'loading', onclick: (e) => unload(m, e.currentTarget) }, 'Unload')),
      );
    }
    if (!models.length && !tbody.querySelector('tr.empty')) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 8, class: 'muted', text: 'no models loaded' })));
  }

  async function load() {
    try {
      const [result] = await Promise.all([api('/api/inference/models'), loadLatency()]);
      disabled = false;
      setText(note, '');
      form.hidden = false;
      tbody.querySelector('tr.empty')?.remove();
      render(result.models || []);
      if (!repositoryNames.size) loadRepository();
    } catch (err) {
      if (err instanceof ApiError && err.disabled) {
        disabled = true;
        setText(note, `disabled: ${err.message}`);
        form.hidden = true;
        syncKeyed(tbody, rows, [], () => null);
        return;
      }
      throw err;
    }
  }

  const refreshSoon = throttle(() => load().catch(() => {}), 1000);

  async function unload(model, button) {
    button.disabled = true;
    try {
      await api(`/api/inference/model/${encodeURIComponent(model.id)}`, { method: 'DELETE' });
      toast(`unloaded ${model.name}:${model.version}`, 'info');
      rows.get(model.id)?.remove();
      rows.delete(model.id);
      refreshSoon();
    } catch (err) {
      button.disabled = false;
      reportError(`unload ${model.name}`, err);
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (disabled) return;
    const path = form.elements.path.value.trim();
    const name = form.elements.name.value.trim();
    const problem = validateLoad(path, name);
    if (problem) {
      toast(problem);
      return;
    }
    const button = form.querySelector('button[data-action="load"]');
    button.disabled = true;
    try {
      const fromRepository = repositoryNames.has(path) && !/[/.]/.test(path) && !name;
      if (fromRepository) await api(`/v2/repository/models/${encodeURIComponent(path)}/load`, { method: 'POST', body: {} });
      else await api('/api/inference/model/load', { method: 'POST', body: name ? { path, name } : { path } });
      toast(`loaded ${name || path}`, 'info');
      form.reset();
      await load();
    } catch (err) {
      reportError(`load ${path}`, err);
    } finally {
      button.disabled = false;
    }
  });

  function addEviction(event) {
    evictions.querySelector('li.empty')?.remove();
    const key = `${event.time}|${event.message}`;
    if ([...evictions.children].some((li) => li.dataset.key === key)) return;
    evictions.prepend(h('li', { dataset: { key } }, h('time', { text: fmtTime(event.time) }), ' ', event.message || event.type));
    while (evictions.children.length > kMaxEvictions) evictions.lastChild.remove();
  }

  async function loadEvictions() {
    if (app.telemetryOff || disabled) return;
    try {
      const result = await api('/api/events?type=model.evicted&limit=20');
      for (const event of (result.events || []).slice().reverse()) addEviction(event);
    } catch {
      // telemetry off: evictions only from the live feed
    }
  }

  function onEvent(event) {
    const type = event.type || '';
    if (type === 'model.evicted') addEviction(event);
    if (type.startsWith('model.') || type.startsWith('suite.')) refreshSoon();
  }

  setInterval(() => {
    if (!document.hidden && app.live && !disabled) refreshSoon();
  }, 5000);

  return {
    load: async () => {
      await load();
      await loadEvictions();
    },
    onEvent,
  };
}
