// Watching and driving the dashboard in puppeteer: every console error, page error, failed
// request and response status in order (PageWatch), and waits on the DOM contract with the page's
// state in the error when they time out.
import assert from 'node:assert/strict';

import { kTimeoutMs } from './wait.mjs';

// Everything the page reports that could be a problem, in order, so each case can check the
// stretch it caused. Every response status is kept for the "never 5xx" check.
export class PageWatch {
  constructor(page, label) {
    this.label = label;
    this.entries = [];
    this.responses = [];
    page.on('console', (message) => {
      if (message.type() === 'error') {
        this.entries.push({ kind: 'console', text: message.text(),
                            url: message.location()?.url ?? '' });
      }
    });
    page.on('pageerror', (error) => {
      this.entries.push({ kind: 'pageerror', text: String(error?.stack ?? error) });
    });
    page.on('requestfailed', (request) => {
      this.entries.push({ kind: 'requestfailed', url: request.url(), method: request.method(),
                          text: request.failure()?.errorText ?? '' });
    });
    page.on('response', (response) => {
      const entry = { kind: 'status', url: response.url(), method: response.request().method(),
                      status: response.status() };
      this.responses.push(entry);
      if (entry.status >= 400) this.entries.push(entry);
    });
  }

  mark() { return this.entries.length; }

  // Fails on every entry since `mark` that `expected(entry)` does not accept.
  assertClean(mark, expected = () => false, what = 'the page') {
    const since = this.entries.slice(mark);
    since.filter(expected).forEach((entry) => { entry.expected = true; });
    const problems = since.filter((entry) => !entry.expected && !isStreamClosedByPage(entry));
    assert.deepEqual(problems.map(describeEntry), [],
                     `${what} (${this.label}) reported errors or failed requests`);
  }

  // Entries no case provoked and accepted.
  unexpected() {
    return this.entries.filter((entry) => !entry.expected && !isStreamClosedByPage(entry))
        .map(describeEntry);
  }

  serverErrors() {
    return this.responses.filter((entry) => entry.status >= 500).map(describeEntry);
  }
}

export function describeEntry(entry) {
  switch (entry.kind) {
    case 'status': return `${entry.method} ${entry.url} -> ${entry.status}`;
    case 'requestfailed': return `${entry.method} ${entry.url} failed: ${entry.text}`;
    default: return `${entry.kind}: ${entry.text}${entry.url ? ` (${entry.url})` : ''}`;
  }
}

// The page ending one of its own event streams (a finished job's, or the feed on reconnect)
// aborts that fetch; that is not a failed request.
export const isStreamClosedByPage = (entry) => entry.kind === 'requestfailed' &&
                                        entry.text === 'net::ERR_ABORTED' &&
                                        /\/(events|stream)$/.test(new URL(entry.url).pathname);

// Chrome logs every non-2xx fetch as "Failed to load resource: ..." on the console; a case that
// provokes one accepts that line together with the response itself.
export const isResourceLog = (entry) => entry.kind === 'console' &&
                                 entry.text.startsWith('Failed to load resource');

export async function pageState(page) {
  return page.evaluate(() => {
    const status = document.querySelector('#status');
    const cards = [...document.querySelectorAll('#devices .device-card')]
                      .map((card) => card.dataset.deviceId);
    const charts = [...document.querySelectorAll('div.chart')]
                       .map((chart) => `${chart.dataset.chart}=${chart.dataset.points}`);
    const toast = document.querySelector('#toast');
    return `#status=${status ? `${status.dataset.state}/'${status.textContent.trim()}'` : 'none'}` +
           ` cards=[${cards}] charts=[${charts}]` +
           ` toast='${toast ? toast.textContent.trim().slice(0, 200) : ''}'`;
  }).catch((error) => `(page state unavailable: ${error.message})`);
}

// waitForFunction with the page's state in the error when it times out.
export async function waitInPage(page, what, predicate, args = [], timeout = kTimeoutMs) {
  try {
    return await page.waitForFunction(predicate, { timeout, polling: 100 }, ...args);
  } catch (error) {
    if (error?.name !== 'TimeoutError') throw error;
    throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${await pageState(page)}`);
  }
}

export async function chartPoints(page, key) {
  return page.$eval(`div.chart[data-chart="${key}"]`, (chart) => Number(chart.dataset.points));
}

export async function waitForChartGrowth(page, key, timeout) {
  await waitInPage(page, `chart ${key} with points`, (k) => {
    const chart = document.querySelector(`div.chart[data-chart="${k}"]`);
    return chart && Number(chart.dataset.points) > 0;
  }, [key], timeout);
  const first = await chartPoints(page, key);
  await waitInPage(page, `chart ${key} to grow past ${first} points`, (k, before) => {
    const chart = document.querySelector(`div.chart[data-chart="${k}"]`);
    return chart && Number(chart.dataset.points) > before;
  }, [key, first], timeout);
  return { first, later: await chartPoints(page, key) };
}

export async function waitForStatus(page, state, timeout = kTimeoutMs) {
  await waitInPage(page, `#status data-state=${state}`,
                   (wanted) => document.querySelector('#status')?.dataset.state === wanted,
                   [state], timeout);
}

export async function waitForCards(page, ids, timeout = kTimeoutMs) {
  await waitInPage(page, `one card per device (${ids})`, (wanted) => {
    const cards = [...document.querySelectorAll('#devices .device-card')]
                      .map((card) => card.dataset.deviceId);
    return cards.length === wanted.length && wanted.every((id) => cards.includes(id));
  }, [ids], timeout);
}

// Each device's card and four charts exist exactly once (no duplicates after reconnects).
export async function countPerDevice(page, ids) {
  return page.evaluate((wanted) => Object.fromEntries(wanted.map((id) => {
    const count = (selector) => document.querySelectorAll(selector).length;
    return [id, {
      card: count(`#devices .device-card[data-device-id="${id}"]`),
      util: count(`div.chart[data-chart="util-${id}"]`),
      mem: count(`div.chart[data-chart="mem-${id}"]`),
      temp: count(`div.chart[data-chart="temp-${id}"]`),
      power: count(`div.chart[data-chart="power-${id}"]`),
    }];
  })), ids);
}

// The header is sticky: an element scrolled just into view can sit under it, where a click lands
// on the header. Center it first, as a user scrolling to it would.
export async function centerOn(page, selector) {
  await page.$eval(selector, (element) => element.scrollIntoView({ block: 'center' }));
}

export async function clickOn(page, selector) {
  await centerOn(page, selector);
  await page.click(selector);
}

export async function fillInput(page, selector, text) {
  await centerOn(page, selector);
  await page.$eval(selector, (input) => { input.value = ''; });
  await page.type(selector, text);
}

// Toasts hide themselves after a few seconds; screenshots and the next toast check wait for that.
export async function waitForToastGone(page) {
  await waitInPage(page, 'the toast to hide',
                   () => document.querySelector('#toast')?.hidden !== false);
}

// The document's scroll width and the first elements reaching past the viewport's right edge.
export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const describe = (element) => {
      const classes = typeof element.className === 'string' && element.className.trim()
                          ? `.${element.className.trim().split(/\s+/).join('.')}` : '';
      const right = Math.round(element.getBoundingClientRect().right);
      return `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${classes}` +
             `(right=${right})`;
    };
    const wide = [...document.querySelectorAll('body *')]
                     .filter((element) => element.getBoundingClientRect().right > width + 0.5)
                     .slice(0, 5).map(describe);
    return { scrollWidth: document.documentElement.scrollWidth, clientWidth: width, wide };
  });
}
