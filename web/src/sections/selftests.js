// Self-tests: the last finished run per device with its outcome (pass / warn / fail).
import { api, ApiError } from '../api.js';
import { h, setText, setChildren, fmtTime, syncKeyed, throttle } from '../util.js';

const kRank = { pass: 0, skip: -1, warn: 1, fail: 2 };

/** The outcome of one device in a run: the worst non-skip result, else the run's status. */
export function deviceOutcome(run, deviceId) {
  let worst = null;
  for (const r of run.results || []) {
    if (r.deviceId !== deviceId || r.status === 'skip') continue;
    if (worst === null || kRank[r.status] > kRank[worst]) worst = r.status;
  }
  if (worst) return worst;
  return run.status && run.status !== 'skip' ? run.status : null;
}

export function createSelfTests(app) {
  const section = document.getElementById('selftests');
  const note = section.querySelector('.section-note');
  const tbody = section.querySelector('table.selftests tbody');
  const rows = new Map();
  let disabled = false;

  async function load() {
    let result;
    try {
      result = await api('/api/testing/runs?limit=100');
    } catch (err) {
      if (err instanceof ApiError && (err.disabled || err.status === 404)) {
        disabled = true;
        setText(note, err.disabled ? `disabled: ${err.message}` : 'not available on this daemon');
        syncKeyed(tbody, rows, [], () => null);
        return;
      }
      throw err;
    }
    disabled = false;
    const latest = new Map(); // deviceId -> {run, outcome}
    const running = new Map();
    for (const run of result.runs || []) {
      for (const deviceId of run.devices || []) {
        if (run.state === 'queued' || run.state === 'running') {
          if (!running.has(deviceId)) running.set(deviceId, run);
          continue;
        }
        if (latest.has(deviceId)) continue;
        latest.set(deviceId, { run, outcome: deviceOutcome(run, deviceId) });
      }
    }
    const ids = [...new Set([...latest.keys(), ...running.keys()])].sort();
    setText(note, ids.length ? '' : 'No self-test runs yet (deviceops test quick).');
    syncKeyed(tbody, rows, ids, (id) => h('tr', { dataset: { deviceId: id } }));
    for (const id of ids) {
      const entry = latest.get(id);
      const live = running.get(id);
      const row = rows.get(id);
      const outcome = entry ? entry.outcome : null;
      const badge = h('span', { class: 'badge outcome', text: outcome || (entry ? entry.run.state : 'none') });
      if (outcome) badge.dataset.outcome = outcome;
      const run = entry ? entry.run : null;
      const summary = run && run.summary ? `${run.summary.pass || 0} pass · ${run.summary.warn || 0} warn · ${run.summary.fail || 0} fail · ${run.summary.skip || 0} skip` : '';
      const problems = run ? (run.results || []).filter((r) => r.deviceId === id && (r.status === 'warn' || r.status === 'fail')).map((r) => `${r.test}: ${r.reason}`) : [];
      setChildren(
        row,
        h('td', {}, (app.devices.get(id) || {}).name || id, ' ', h('code', { text: id })),
        h('td', {}, badge, live ? h('div', { class: 'muted', text: `${live.kind} ${live.level || ''} running ${Math.round(((live.progress || {}).fraction || 0) * 100)}%` }) : null),
        h('td', { text: run ? `${run.kind}${run.level ? ` ${run.level}` : ''}` : '–' }),
        h('td', { text: run ? fmtTime(run.finishedAt) : '–' }),
        h('td', { class: 'wrap' }, summary, problems.length ? h('ul', { class: 'plain muted' }, problems.slice(0, 5).map((p) => h('li', { text: p }))) : null),
      );
    }
  }

  const refreshSoon = throttle(() => load().catch(() => {}), 2000);
  setInterval(() => {
    if (!document.hidden && app.live && !disabled) refreshSoon();
  }, 15000);

  return {
    load,
    onEvent: (event) => {
      if (/^(selftest|testing)\./.test(event.type || '')) refreshSoon();
    },
  };
}
