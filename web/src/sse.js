// Server-Sent Events over fetch() (EventSource cannot send Authorization): a small parser,
// Last-Event-ID resume, reconnect with exponential backoff and an idle watchdog.
import { apiResponse, ApiError } from './api.js';

const kMinBackoffMs = 500;
const kMaxBackoffMs = 10000;
const kIdleMs = 45000; // the daemon sends ": keep-alive" every 15 s of silence

/** Splits an SSE byte stream into events: feed(text) calls onEvent({type, data, id}). */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
  }
  reset() {
    this.type = '';
    this.data = [];
    this.id = null;
  }
  feed(text) {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const newline = this.buffer.indexOf('\n', start);
      if (newline < 0) break;
      let line = this.buffer.slice(start, newline);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = newline + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }
  line(line) {
    if (line === '') {
      if (this.data.length > 0 || this.type) {
        this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
  }
}

/**
 * One live SSE connection that reconnects until stop().
 * handlers: onEvent(type, data (parsed JSON or null), id), onOpen(), onDrop(error),
 * onFatal(ApiError) for answers that retrying cannot fix (401, 404, 503 disabled).
 * options.once: stop after the server closes the stream following an "end" event.
 */
export class SseStream {
  constructor(url, handlers, options = {}) {
    this.url = url;
    this.handlers = handlers;
    this.options = options;
    this.lastEventId = options.lastEventId ?? null;
    this.stopped = true;
    this.controller = null;
    this.backoffMs = kMinBackoffMs;
    this.ended = false;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    while (!this.stopped) {
      const failure = await this.connectOnce();
      if (this.stopped) return;
      if (this.ended && this.options.once) {
        this.stopped = true;
        return;
      }
      if (failure instanceof ApiError && failure.status !== 0 && failure.status !== 502 && !(failure.status === 503 && !failure.disabled)) {
        this.stopped = true;
        if (this.handlers.onFatal) this.handlers.onFatal(failure);
        return;
      }
      if (this.handlers.onDrop) this.handlers.onDrop(failure);
      const delay = this.backoffMs * (0.75 + Math.random() * 0.5);
      this.backoffMs = Math.min(this.backoffMs * 2, kMaxBackoffMs);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async connectOnce() {
    const controller = new AbortController();
    this.controller = controller;
    let idleTimer = null;
    const touch = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => controller.abort(), kIdleMs);
    };
    try {
      const headers = { Accept: 'text/event-stream' };
      if (this.lastEventId !== null) headers['Last-Event-ID'] = String(this.lastEventId);
      touch();
      const response = await apiResponse(this.url, { headers, signal: controller.signal });
      this.backoffMs = kMinBackoffMs;
      if (this.handlers.onOpen) this.handlers.onOpen();
      const parser = new SseParser((event) => this.dispatch(event));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        parser.feed(decoder.decode(value, { stream: true }));
        if (this.stopped) break;
      }
      return null;
    } catch (err) {
      return err;
    } finally {
      clearTimeout(idleTimer);
      controller.abort();
    }
  }

  dispatch(event) {
    if (event.id !== null && event.id !== '') this.lastEventId = event.id;
    if (event.type === 'end') this.ended = true;
    let data = null;
    if (event.data) {
      try {
        data = JSON.parse(event.data);
      } catch {
        data = event.data;
      }
    }
    if (this.stopped) return;
    try {
      this.handlers.onEvent(event.type, data, event.id);
    } catch (err) {
      console.warn('event handler failed', event.type, err);
    }
  }
}
