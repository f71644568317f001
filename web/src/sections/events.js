// Events: history from /api/events, then the live feed prepended (newest first), deduplicated.
import { api, ApiError } from '../api.js';
import { h, setText, fmtTime } from '../util.js';

const kMaxEvents = 200;

function eventKey(e) {
  return `${e.time}|${e.type}|${e.deviceId || ''}|${e.message || ''}`;
}

export function createEvents(app) {
  const section = document.getElementById('events');
  const note = section.querySelector('.section-note');
  const list = section.querySelector('ul.event-list');
  const seen = new Set();

  function item(e) {
    return h(
      'li',
      { class: `event severity-${e.severity || 'info'}`, dataset: { type: e.type || 'unknown', key: eventKey(e) } },
      h('time', { datetime: e.time, text: fmtTime(e.time) }),
      h('span', { class: 'event-type', text: e.type }),
      e.deviceId ? h('code', { text: e.deviceId }) : null,
      h('span', { class: 'event-message wrap', text: e.message || '' }),
    );
  }

  function trim() {
    while (list.children.length > kMaxEvents) {
      seen.delete(list.lastChild.dataset.key);
      list.lastChild.remove();
    }
  }

  /** Adds one event in time order (newest first); a duplicate is ignored. */
  function add(e) {
    const key = eventKey(e);
    if (seen.has(key)) return;
    seen.add(key);
    const el = item(e);
    const time = Date.parse(e.time);
    let before = list.firstChild;
    while (before && Date.parse(before.querySelector('time').getAttribute('datetime')) > time) before = before.nextSibling;
    list.insertBefore(el, before);
    setText(note, '');
    trim();
  }

  async function load() {
    if (app.telemetryOff) {
      setText(note, 'history disabled: telemetry is off ([telemetry] enabled = false)');
      return;
    }
    let result;
    try {
      result = await api(`/api/events?limit=${kMaxEvents}`);
    } catch (err) {
      if (err instanceof ApiError && err.disabled) {
        app.telemetryOff = true;
        setText(note, `history disabled: ${err.message}`);
        return;
      }
      throw err;
    }
    const events = result.events || [];
    for (const e of events.slice().reverse()) add(e);
    if (!list.children.length) setText(note, 'No events yet.');
  }

  return { load, onEvent: add };
}
