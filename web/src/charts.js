// Live line charts on uPlot. Each chart is a div.chart[data-chart=key][data-points=n]; n is
// the number of x points drawn, updated on every redraw. Marks (shaded x ranges, vertical
// lines) are drawn under the series by a drawClear hook.
import uPlot from 'uplot';
import { h } from './util.js';

const kDefaultHeight = 130;

/** Unix seconds as local HH:MM:SS. */
function clockTime(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export class LiveChart {
  /**
   * key: the data-chart key; title: caption; series: [{label, stroke, fill, format}];
   * options: {time (x is unix seconds, default true), yRange [min,max] or null, format(v),
   * maxPoints, marks () => {bands: [{from, to, color}], lines: [{x, color}]}}.
   */
  constructor(key, title, series, options = {}) {
    this.key = key;
    this.series = series;
    this.options = options;
    this.maxPoints = options.maxPoints || 3600;
    this.data = [[], ...series.map(() => [])];
    this.el = h('div', { class: 'chart', dataset: { chart: key, points: '0' } });
    this.figure = h('figure', { class: 'chart-box' }, h('figcaption', { text: title }), this.el);
    this.plot = null;
    this.resizeObserver = null;
  }

  /** Creates the uPlot instance once the element is in the document (needs a width). */
  mount() {
    if (this.plot) return;
    const format = this.options.format || ((v) => String(v));
    const width = Math.max(this.el.clientWidth || 0, 200);
    const yScale = { auto: true };
    if (this.options.yRange) {
      const [lo, hi] = this.options.yRange;
      yScale.range = (u, min, max) => [lo ?? Math.min(min ?? 0, 0), Math.max(hi ?? max ?? 1, max ?? 0)];
    }
    const opts = {
      width,
      height: this.options.height || kDefaultHeight,
      padding: [8, 18, 0, 0],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: this.options.time !== false }, y: yScale },
      axes: [
        {
          stroke: '#8a94a6',
          grid: { stroke: '#2a3140', width: 1 },
          ticks: { show: false },
          size: 24,
          font: '11px system-ui',
          space: 60,
          values: (u, values) => values.map((v) => (this.options.time === false ? String(v) : clockTime(v))),
        },
        {
          stroke: '#8a94a6',
          grid: { stroke: '#2a3140', width: 1 },
          ticks: { show: false },
          size: 54,
          font: '11px system-ui',
          values: (u, values) => values.map((v) => format(v)),
        },
      ],
      series: [
        this.options.time !== false ? {} : { label: this.options.xLabel || 'x' },
        ...this.series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          fill: s.fill,
          width: 1.5,
          spanGaps: false,
          points: { show: false },
          value: (u, v) => (v === null || v === undefined ? '–' : (s.format || format)(v)),
        })),
      ],
      hooks: { drawClear: [(u) => this.drawMarks(u)] },
    };
    this.plot = new uPlot(opts, this.data, this.el);
    this.el.dataset.points = String(this.data[0].length);
    if (typeof ResizeObserver !== 'undefined') {
      this.resizeObserver = new ResizeObserver(() => this.fit());
      this.resizeObserver.observe(this.figure);
    }
  }

  fit() {
    if (!this.plot) return;
    const width = Math.max(Math.floor(this.el.clientWidth), 160);
    if (Math.abs(width - this.plot.width) > 2) this.plot.setSize({ width, height: this.plot.height });
  }

  drawMarks(u) {
    if (!this.options.marks) return;
    const { bands = [], lines = [] } = this.options.marks() || {};
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const band of bands) {
      const x0 = u.valToPos(band.from, 'x', true);
      const x1 = u.valToPos(band.to, 'x', true);
      if (!Number.isFinite(x0) || !Number.isFinite(x1)) continue;
      ctx.fillStyle = band.color;
      ctx.fillRect(x0, top, Math.max(x1 - x0, 2), height);
    }
    for (const line of lines) {
      const x = u.valToPos(line.x, 'x', true);
      if (!Number.isFinite(x)) continue;
      ctx.fillStyle = line.color;
      ctx.fillRect(Math.round(x) - 1, top, 2, height);
    }
    ctx.restore();
  }

  /** Replaces every point: xs and one array per series (null where missing). */
  setData(xs, ...ys) {
    this.data = [xs.slice(), ...this.series.map((_, i) => (ys[i] || []).slice())];
    this.trim();
    this.redraw();
  }

  /** Adds one point; an x not after the last one replaces the last one with the same x or is dropped. */
  append(x, ...values) {
    const xs = this.data[0];
    const last = xs.length ? xs[xs.length - 1] : -Infinity;
    if (x < last) return;
    if (x === last) {
      this.series.forEach((_, i) => {
        this.data[i + 1][xs.length - 1] = values[i] ?? null;
      });
    } else {
      xs.push(x);
      this.series.forEach((_, i) => this.data[i + 1].push(values[i] ?? null));
    }
    this.trim();
    this.redraw();
  }

  trim() {
    const excess = this.data[0].length - this.maxPoints;
    if (excess > 0) this.data = this.data.map((column) => column.slice(excess));
  }

  get points() {
    return this.data[0].length;
  }

  redraw() {
    if (this.plot) this.plot.setData(this.data);
    this.el.dataset.points = String(this.data[0].length);
  }

  destroy() {
    if (this.resizeObserver) this.resizeObserver.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.figure.remove();
  }
}
