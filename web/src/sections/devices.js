// Devices: one card per device (keyed by id) with live charts of utilization, memory,
// temperature and power; throttling and unhealthy stretches shaded, health changes as lines.
import { api, ApiError } from '../api.js';
import { LiveChart } from '../charts.js';
import { h, setText, setChildren, fmtBytes, fmtNumber, fmtPercent, throttle } from '../util.js';

const kHistoryWindow = '15m';
const kMaxPoints = 1800;
const kBandColors = {
  throttled: 'rgba(255, 166, 0, 0.22)',
  degraded: 'rgba(255, 214, 0, 0.12)',
  critical: 'rgba(255, 70, 70, 0.20)',
  lost: 'rgba(160, 160, 160, 0.22)',
};
const kLineColors = { info: '#4caf50', warning: '#ffb300', error: '#ff5252' };

class DeviceCard {
  constructor(id) {
    this.id = id;
    this.marks = { bands: [], lines: [] };
    this.openBands = {};
    const marks = () => this.marks;
    const chart = (key, title, series, options) =>
      new LiveChart(`${key}-${id}`, title, series, { maxPoints: kMaxPoints, marks, ...options });
    this.charts = {
      util: chart('util', 'Utilization', [{ label: 'util', stroke: '#42a5f5', fill: 'rgba(66,165,245,0.15)' }], {
        yRange: [0, 1],
        format: (v) => fmtPercent(v),
      }),
      mem: chart(
        'mem',
        'Memory',
        [
          { label: 'used', stroke: '#ab47bc', fill: 'rgba(171,71,188,0.15)' },
          { label: 'free', stroke: '#26a69a' },
        ],
        { yRange: [0, null], format: (v) => fmtBytes(v) },
      ),
      temp: chart('temp', 'Temperature', [{ label: '°C', stroke: '#ff7043' }], { format: (v) => `${fmtNumber(v, 0)}°` }),
      power: chart('power', 'Power', [{ label: 'W', stroke: '#ffca28' }], { yRange: [0, null], format: (v) => `${fmtNumber(v, Math.abs(v) < 10 ? 1 : 0)} W` }),
    };
    this.name = h('span', { class: 'device-name' });
    this.vendor = h('span', { class: 'device-vendor' });
    this.health = h('span', { class: 'device-health badge', dataset: { health: 'healthy' } });
    this.backends = h('span', { class: 'device-backends muted' });
    this.reasons = h('ul', { class: 'device-reasons plain' });
    this.readings = h('div', { class: 'device-readings' });
    this.el = h(
      'article',
      { class: 'device-card card', dataset: { deviceId: id } },
      h('header', { class: 'card-head' }, h('h3', {}, this.name), this.health),
      h('p', { class: 'card-sub' }, this.vendor, ' · ', h('code', { text: id }), ' · ', this.backends),
      this.reasons,
      this.readings,
      h('div', { class: 'charts' }, Object.values(this.charts).map((c) => c.figure)),
    );
    this.historyLoaded = false;
  }

  mount() {
    for (const c of Object.values(this.charts)) c.mount();
  }

  updateInfo(device) {
    setText(this.name, device.name || device.id);
    setText(this.vendor, device.vendor || '');
    setText(this.backends, (device.backends || []).join(', ') + (device.simulated && !(device.backends || []).includes('simulated') ? ' (simulated)' : ''));
    if (device.health) this.setHealth(device.health);
  }

  setHealth(health) {
    const status = health.status || 'healthy';
    if (this.health.dataset.health !== status) this.health.dataset.health = status;
    setText(this.health, status);
    const reasons = (health.reasons || []).map((r) => r.message || r.code || JSON.stringify(r));
    const current = [...this.reasons.children].map((li) => li.textContent);
    if (current.join('\n') !== reasons.join('\n')) setChildren(this.reasons, reasons.map((r) => h('li', { text: r })));
  }

  updateReadings(sample) {
    const parts = [
      ['util', fmtPercent(sample.utilizationRatio)],
      ['temp', sample.temperatureCelsius === null || sample.temperatureCelsius === undefined ? '–' : `${fmtNumber(sample.temperatureCelsius, 0)} °C`],
      ['power', sample.powerWatts === null || sample.powerWatts === undefined ? '–' : `${fmtNumber(sample.powerWatts, 0)} W`],
      ['memory', `${fmtBytes(sample.memoryUsedBytes)} / ${fmtBytes(sample.memoryTotalBytes)}`],
      ['held', fmtBytes(sample.heldBytes)],
    ];
    if (sample.throttled) parts.push(['throttled', (sample.throttleReasons || []).join(', ') || 'yes']);
    if (sample.stale) parts.push(['stale', `${fmtNumber(sample.ageSeconds, 0)} s old`]);
    const text = parts.map(([k, v]) => `${k} ${v}`).join(' · ');
    setText(this.readings, text);
    this.readings.classList.toggle('warn', Boolean(sample.throttled || sample.stale));
  }

  /** Full history from the statistics series (replaces what the charts had). */
  setHistory(series) {
    const t = series.time || [];
    const used = series.memoryUsedBytes || [];
    const total = this.totalBytes;
    const free = used.map((u) => (u === null || u === undefined || !total ? null : total - u));
    this.charts.util.setData(t, series.utilizationRatio || []);
    this.charts.mem.setData(t, used, free);
    this.charts.temp.setData(t, series.temperatureCelsius || []);
    this.charts.power.setData(t, series.powerWatts || []);
    this.marks.bands = [];
    this.openBands = {};
    const throttled = series.throttled || [];
    t.forEach((x, i) => this.trackBand('throttled', Boolean(throttled[i]), x));
    this.redraw();
  }

  trackBand(kind, active, x) {
    const open = this.openBands[kind];
    if (active) {
      if (open) open.to = x;
      else {
        const band = { from: x, to: x, color: kBandColors[kind] };
        this.openBands[kind] = band;
        this.marks.bands.push(band);
      }
    } else if (open) {
      open.to = x;
      delete this.openBands[kind];
    }
  }

  addSample(sample, x) {
    this.totalBytes = sample.memoryTotalBytes ?? this.totalBytes;
    this.setHealth(sample.health || {});
    this.updateReadings(sample);
    this.trackBand('throttled', Boolean(sample.throttled), x);
    const status = sample.health ? sample.health.status : 'healthy';
    for (const kind of ['degraded', 'critical', 'lost']) this.trackBand(kind, status === kind, x);
    const cutoff = x - kMaxPoints * 5;
    this.marks.bands = this.marks.bands.filter((b) => b.to >= cutoff);
    this.marks.lines = this.marks.lines.filter((l) => l.x >= cutoff);
    this.charts.util.append(x, sample.utilizationRatio);
    const used = sample.memoryUsedBytes;
    const free = sample.memoryFreeBytes ?? (used !== null && used !== undefined && sample.memoryTotalBytes ? sample.memoryTotalBytes - used : null);
    this.charts.mem.append(x, used, free);
    this.charts.temp.append(x, sample.temperatureCelsius);
    this.charts.power.append(x, sample.powerWatts);
  }

  addLine(x, severity) {
    if (this.marks.lines.some((l) => l.x === x)) return;
    this.marks.lines.push({ x, color: kLineColors[severity] || kLineColors.info });
    this.redraw();
  }

  redraw() {
    for (const c of Object.values(this.charts)) c.redraw();
  }

  destroy() {
    for (const c of Object.values(this.charts)) c.destroy();
    this.el.remove();
  }
}

export function createDevices(app) {
  const section = document.getElementById('devices');
  const container = section.querySelector('.cards');
  const note = section.querySelector('.section-note');
  const cards = new Map();
  let loading = null;

  async function loadHistory(card) {
    if (app.telemetryOff) return;
    try {
      const stats = await api(`/api/integration/statistics/${encodeURIComponent(card.id)}?window=${kHistoryWindow}&series=1`);
      if (stats && stats.series && Array.isArray(stats.series.time)) card.setHistory(stats.series);
      card.historyLoaded = true;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.disabled) app.telemetryOff = true;
      // telemetry off (503) or a device not sampled yet (404): the live samples fill the charts
    }
  }

  async function loadMarks() {
    if (app.telemetryOff) return;
    try {
      const result = await api(`/api/events?since=${kHistoryWindow}&limit=500`);
      for (const event of result.events || []) addEventMark(event);
    } catch {
      // telemetry off: no event history
    }
  }

  function addEventMark(event) {
    if (!event.deviceId || !event.type) return;
    if (!event.type.startsWith('health.') && !event.type.startsWith('throttling.') && !event.type.startsWith('device.')) return;
    const card = cards.get(event.deviceId);
    const x = Date.parse(event.time) / 1000;
    if (card && Number.isFinite(x)) card.addLine(x, event.severity);
  }

  async function loadNow() {
    const list = await api('/api/device');
    const devices = list.devices || [];
    app.devices = new Map(devices.map((d) => [d.id, d]));
    setText(note, devices.length ? '' : 'No devices.');
    const fresh = [];
    const ids = devices.map((d) => d.id);
    for (const [id, card] of cards) {
      if (!ids.includes(id)) {
        card.destroy();
        cards.delete(id);
      }
    }
    ids.forEach((id, index) => {
      let card = cards.get(id);
      if (!card) {
        card = new DeviceCard(id);
        cards.set(id, card);
        fresh.push(card);
      }
      card.totalBytes = devices[index].memory ? devices[index].memory.totalBytes : card.totalBytes;
      card.updateInfo(devices[index]);
      const at = container.children[index];
      if (at !== card.el) container.insertBefore(card.el, at || null);
    });
    for (const card of fresh) card.mount();
    app.emit('devices', devices);
    // every (re)load replaces the chart history: a daemon restart never stacks duplicates
    const all = [...cards.values()];
    if (all.length) await loadHistory(all[0]); // a 503 (telemetry off) spares the others
    await Promise.all(all.slice(1).map(loadHistory));
    await loadMarks();
  }

  function load() {
    if (!loading) loading = loadNow().finally(() => (loading = null));
    return loading;
  }

  const reloadSoon = throttle(() => load().catch(() => {}), 3000);

  function onSamples(payload) {
    const fallbackX = Date.parse(payload.time) / 1000;
    for (const sample of payload.devices || []) {
      const card = cards.get(sample.deviceId);
      if (!card) {
        reloadSoon();
        continue;
      }
      let x = Date.parse(sample.time) / 1000;
      if (!Number.isFinite(x)) x = Number.isFinite(fallbackX) ? fallbackX : Date.now() / 1000;
      card.addSample(sample, x);
    }
  }

  function onEvent(event) {
    addEventMark(event);
    if (event.type === 'device.disappeared' || event.type === 'device.appeared') reloadSoon();
  }

  return { load, onSamples, onEvent, cards };
}
