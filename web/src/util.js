// Small DOM and formatting helpers shared by the sections.

/** Creates an element: h('td', {class: 'x', dataset: {id}}, child, 'text', ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces el's children. */
export function setChildren(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** Sets textContent only when it changed (keeps the DOM quiet). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

const kUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
/** Bytes as "1.5 GiB"; "–" for null. */
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '–';
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < kUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : 1)} ${kUnits[unit]}`;
}

export function fmtNumber(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return value.toFixed(digits);
}

export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–';
  return `${(ratio * 100).toFixed(0)}%`;
}

/** Seconds as "1h 2m", "3m 4s" or "5s". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${s}s`;
}

/** An RFC 3339 time as local "HH:MM:SS" (today) or "YYYY-MM-DD HH:MM". */
export function fmtTime(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  const hms = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === now.toDateString()) return hms;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${hms}`;
}

/** Runs fn at most once per `ms` (trailing call kept). */
export function throttle(fn, ms) {
  let timer = null;
  let pendingArgs = null;
  const tick = () => {
    timer = null;
    if (pendingArgs) {
      const args = pendingArgs;
      pendingArgs = null;
      fn(...args);
      timer = setTimeout(tick, ms);
    }
  };
  return (...args) => {
    if (timer) {
      pendingArgs = args;
      return;
    }
    fn(...args);
    timer = setTimeout(tick, ms);
  };
}

/** Keeps the keyed children of `parent` in the order of `keys`: creates missing ones with
 * create(key), removes those not listed, returns the Map key -> element. */
export function syncKeyed(parent, map, keys, create) {
  const wanted = new Set(keys);
  for (const [key, el] of map) {
    if (!wanted.has(key)) {
      el.remove();
      map.delete(key);
    }
  }
  let previous = null;
  for (const key of keys) {
    let el = map.get(key);
    if (!el) {
      el = create(key);
      map.set(key, el);
    }
    const expected = previous ? previous.nextSibling : parent.firstChild;
    if (expected !== el) parent.insertBefore(el, expected);
    previous = el;
  }
  return map;
}
