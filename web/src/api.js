// The one way the page talks to the daemon: fetch() with the tab's bearer token, errors as
// ApiError, a 401 opening the token prompt, and error toasts.

const kTokenKey = 'deviceops.token';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  /** A component switched off by the configuration (or telemetry off). */
  get disabled() {
    return this.status === 503 && /disabled|enabled = false|enabled=false/i.test(this.message);
  }
}

const authListeners = new Set();
let authPending = false;

export function token() {
  return sessionStorage.getItem(kTokenKey) || '';
}
export function setToken(value) {
  if (value) sessionStorage.setItem(kTokenKey, value);
  else sessionStorage.removeItem(kTokenKey);
}
/** fn() runs whenever an API call answers 401 (the prompt subscribes). */
export function onAuthRequired(fn) {
  authListeners.add(fn);
}
export function authRequired() {
  return authPending;
}
export function clearAuthRequired() {
  authPending = false;
}
function signalAuth() {
  if (authPending) return;
  authPending = true;
  for (const fn of authListeners) fn();
}

export function authHeaders(extra) {
  const headers = { ...(extra || {}) };
  const value = token();
  if (value) headers.Authorization = `Bearer ${value}`;
  return headers;
}

async function errorFrom(response) {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let details = {};
  try {
    const body = await response.json();
    if (body && typeof body.error === 'object' && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details || {};
    } else if (body && typeof body.error === 'string') {
      message = body.error;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, code, message, details);
}

/** Raw fetch with auth; throws ApiError for non-2xx (401 also opens the prompt). */
export async function apiResponse(path, { method = 'GET', body, headers, signal, quiet401 } = {}) {
  const init = { method, headers: authHeaders(headers), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'the daemon cannot be reached', {});
  }
  if (response.ok) return response;
  const error = await errorFrom(response);
  if (response.status === 401 && !quiet401) signalAuth();
  throw error;
}

/** JSON API call. */
export async function api(path, options) {
  const response = await apiResponse(path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

let toastTimer = null;
/** Shows a message in #toast for a few seconds (never alert()). */
export function toast(message, kind = 'error') {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

/** Toasts an error from an action the user took (401 is left to the prompt). */
export function reportError(what, err) {
  if (err instanceof ApiError && err.status === 401) return;
  const message = err instanceof ApiError ? `${what}: ${err.message} (${err.status || err.code})` : `${what}: ${err}`;
  toast(message);
}
