// The dashboard: loads every section's snapshot over REST, then keeps it live from one
// /api/stream feed (reconnecting with Last-Event-ID); falls back to polling without it.
import { api, ApiError, onAuthRequired, clearAuthRequired, setToken, token, apiResponse } from './api.js';
import { SseStream } from './sse.js';
import { setText } from './util.js';
import { createDevices } from './sections/devices.js';
import { createMemory } from './sections/memory.js';
import { createModels } from './sections/models.js';
import { createTraining } from './sections/training.js';
import { createGeneration } from './sections/generation.js';
import { createSelfTests } from './sections/selftests.js';
import { createEvents } from './sections/events.js';

const kPollMs = 3000;

function createApp() {
  const listeners = new Map();
  return {
    devices: new Map(),
    live: false,
    telemetryOff: false, // set by hello or a 503 from the telemetry routes
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
    },
    emit(name, value) {
      for (const fn of listeners.get(name) || []) fn(value);
    },
  };
}

const app = createApp();
const statusEl = document.getElementById('status');

function setStatus(state, text) {
  statusEl.dataset.state = state;
  setText(statusEl, text);
  app.live = state === 'live';
}

const devices = createDevices(app);
const others = [createMemory(app), createModels(app), createTraining(app), createGeneration(app), createSelfTests(app), createEvents(app)];
const sections = [devices, ...others];
app.on('models-changed', () => others[1].load().catch(() => {}));

let loading = null;
/** Loads every snapshot; devices first (the other sections use the device list). */
function loadAll() {
  if (loading) return loading;
  loading = (async () => {
    try {
      await devices.load();
    } catch (err) {
      // without a token nothing else can load: wait for the prompt
      if (err instanceof ApiError && err.status === 401) return;
      console.info('devices', err.message);
    }
    const results = await Promise.allSettled(others.map((s) => s.load()));
    results.forEach((r) => {
      if (r.status === 'rejected' && !(r.reason instanceof ApiError && r.reason.status === 401)) console.info('load', r.reason && r.reason.message);
    });
  })().finally(() => {
    loading = null;
  });
  return loading;
}

function dispatchSamples(payload) {
  for (const s of sections) if (s.onSamples) s.onSamples(payload);
}
function dispatchEvent(event) {
  for (const s of sections) if (s.onEvent) s.onEvent(event);
}

// --- polling, for a daemon without /api/stream or without telemetry -------------------------
let pollTimer = null;
let pollEvents = false;
let lastEventId = null;
function samplesFromDevices(list) {
  return {
    time: list.updatedAt || new Date().toISOString(),
    devices: (list.devices || []).map((d) => {
      const r = d.readings || {};
      const m = d.memory || {};
      return {
        deviceId: d.id,
        name: d.name,
        vendor: d.vendor,
        time: d.updatedAt || new Date().toISOString(),
        health: d.health,
        temperatureCelsius: r.temperatureCelsius ?? null,
        utilizationRatio: r.utilizationRatio ?? null,
        memoryUsedBytes: m.usedBytes ?? null,
        memoryFreeBytes: m.freeBytes ?? null,
        memoryTotalBytes: m.totalBytes,
        powerWatts: r.powerWatts ?? null,
        throttled: Boolean(r.thermalThrottling || r.powerThrottling),
        throttleReasons: r.throttleReasons || [],
      };
    }),
  };
}
async function pollOnce(withTelemetry) {
  try {
    if (withTelemetry) {
      const health = await api('/api/integration/health');
      dispatchSamples({ time: new Date().toISOString(), devices: health.devices || [] });
    } else {
      dispatchSamples(samplesFromDevices(await api('/api/device')));
    }
    if (pollEvents) {
      const result = await api('/api/events?limit=50');
      const fresh = (result.events || []).filter((e) => lastEventId === null || e.id > lastEventId).reverse();
      for (const e of fresh) dispatchEvent(e);
      if (result.events && result.events.length) lastEventId = Math.max(lastEventId ?? 0, result.events[0].id);
    }
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 503 && withTelemetry) return pollOnce(false);
    return false;
  }
}
function startPolling(withTelemetry, withEvents) {
  stopPolling();
  pollEvents = withEvents;
  const tick = async () => {
    const ok = await pollOnce(withTelemetry);
    if (withEvents) setStatus(ok ? 'live' : 'reconnecting', ok ? 'live (polling)' : 'reconnecting');
    pollTimer = setTimeout(tick, kPollMs);
  };
  pollTimer = setTimeout(tick, withEvents ? 0 : kPollMs);
}
function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

// --- the live feed ---------------------------------------------------------------------------
let stream = null;
let connections = 0;
function startStream() {
  if (stream) stream.stop();
  stopPolling();
  stream = new SseStream('/api/stream', {
    onEvent(type, data, id) {
      if (type === 'hello') {
        connections += 1;
        setStatus('live', 'live');
        if (data && data.node) setText(document.getElementById('node-name'), data.node);
        app.telemetryOff = Boolean(data && data.telemetry === false);
        if (app.telemetryOff) startPolling(false, false);
        else stopPolling();
        // after a reconnect (daemon restart or dropped stream) every snapshot is reloaded;
        // sections replace what they show, keyed by id, so nothing is duplicated
        if (connections > 1) loadAll();
      } else if (type === 'samples') {
        dispatchSamples(data || {});
      } else if (type === 'event') {
        if (data && typeof data === 'object') dispatchEvent(data);
      } else if (type === 'reset') {
        loadAll();
      }
      void id;
    },
    onDrop() {
      stopPolling();
      setStatus('reconnecting', 'reconnecting');
    },
    onFatal(err) {
      if (err.status === 401) {
        setStatus('offline', 'sign in needed');
      } else if (err.status === 404 || err.status === 405) {
        // a daemon without the push endpoint: poll instead
        lastEventId = null;
        startPolling(true, true);
      } else {
        setStatus('offline', `offline: ${err.message}`);
      }
    },
  });
  stream.start();
}

// --- auth ------------------------------------------------------------------------------------
const dialog = document.getElementById('auth-dialog');
const authForm = dialog.querySelector('form');
const authError = dialog.querySelector('.auth-error');
function openDialog() {
  if (typeof dialog.showModal === 'function') {
    if (!dialog.open) dialog.showModal();
  } else {
    dialog.setAttribute('open', '');
  }
  dialog.querySelector('input[name="token"]').focus();
}
function closeDialog() {
  if (typeof dialog.close === 'function' && dialog.open) dialog.close();
  else dialog.removeAttribute('open');
}
onAuthRequired(() => {
  if (stream) stream.stop();
  stopPolling();
  setStatus('offline', 'sign in needed');
  setText(authError, token() ? 'The saved token was refused; enter a valid one.' : '');
  setToken('');
  openDialog();
});
dialog.addEventListener('cancel', (event) => event.preventDefault());
authForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = authForm.elements.token;
  const value = input.value.trim();
  if (!value) {
    setText(authError, 'Enter a token.');
    return;
  }
  setText(authError, '');
  setToken(value);
  try {
    await apiResponse('/api/device', { quiet401: true });
  } catch (err) {
    setToken('');
    setText(authError, err instanceof ApiError && err.status === 401 ? `Token refused: ${err.message}` : `Cannot check the token: ${err.message}`);
    input.select();
    return;
  }
  input.value = '';
  clearAuthRequired();
  closeDialog();
  connections = 0;
  await loadAll();
  startStream();
});

window.addEventListener('online', () => {
  if (stream && stream.stopped && !dialog.open) startStream();
});

loadAll().then(() => {
  if (!dialog.open) startStream();
});
