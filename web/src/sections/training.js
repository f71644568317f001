// Training: jobs with state, progress, ETA, live loss/accuracy curves (the job's own SSE
// stream while it is active, the per-epoch history otherwise), stop/resume/export and logs.
import { api, ApiError, reportError, toast } from '../api.js';
import { LiveChart } from '../charts.js';
import { SseStream } from '../sse.js';
import { h, setText, setChildren, fmtDuration, fmtNumber, fmtTime, throttle } from '../util.js';

const kActive = new Set(['queued', 'starting', 'running', 'stopping']);
const kShownJobs = 20;

class JobCard {
  constructor(id, app, section) {
    this.id = id;
    this.app = app;
    this.section = section;
    this.stream = null;
    this.job = null;
    const training = { time: false, xLabel: 'step', maxPoints: 20000 };
    this.lossChart = new LiveChart(
      `loss-${id}`,
      'Loss',
      [
        { label: 'loss', stroke: '#42a5f5' },
        { label: 'val_loss', stroke: '#ff7043' },
      ],
      { ...training, format: (v) => fmtNumber(v, 3) },
    );
    this.metricChart = new LiveChart(
      `acc-${id}`,
      'Accuracy',
      [
        { label: 'accuracy', stroke: '#66bb6a' },
        { label: 'val_accuracy', stroke: '#ffca28' },
      ],
      { ...training, format: (v) => fmtNumber(v, 3) },
    );
    this.title = h('h3');
    this.state = h('span', { class: 'job-state badge' });
    this.summary = h('p', { class: 'job-summary' });
    this.progressBar = h('progress', { max: 100, value: 0, 'aria-label': 'progress' });
    this.reason = h('p', { class: 'muted wrap' });
    this.buttons = {
      stop: h('button', { type: 'button', dataset: { action: 'stop' }, onclick: () => this.act('stop') }, 'Stop'),
      resume: h('button', { type: 'button', dataset: { action: 'resume' }, onclick: () => this.act('resume') }, 'Resume'),
      export: h('button', { type: 'button', dataset: { action: 'export' }, onclick: () => this.act('export') }, 'Export'),
    };
    this.logs = h('pre', { class: 'logs' });
    this.logsBox = h('details', { class: 'logs-box' }, h('summary', { text: 'Logs (tail)' }), this.logs);
    this.logsBox.addEventListener('toggle', () => {
      if (this.logsBox.open) this.loadLogs();
    });
    this.el = h(
      'article',
      { class: 'job card', dataset: { jobId: id } },
      h('header', { class: 'card-head' }, this.title, this.state),
      this.summary,
      this.progressBar,
      this.reason,
      h('div', { class: 'charts' }, this.lossChart.figure, this.metricChart.figure),
      h('div', { class: 'actions' }, Object.values(this.buttons)),
      this.logsBox,
    );
    this.mounted = false;
  }

  mount() {
    if (this.mounted) return;
    this.mounted = true;
    this.lossChart.mount();
    this.metricChart.mount();
  }

  update(job) {
    this.job = { ...(this.job || {}), ...job };
    const j = this.job;
    setText(this.title, `${j.name || j.jobId} · ${j.model || ''} on ${(j.devices || []).join(', ')}`);
    setText(this.state, j.state);
    this.state.dataset.state = j.state;
    const p = j.progress || {};
    const parts = [
      `epoch ${p.epoch ?? 0}/${p.epochs ?? '?'}`,
      `step ${p.step ?? 0}/${p.totalSteps ?? '?'}`,
      `loss ${fmtNumber(p.loss, 4)}`,
      p.samplesPerSecond ? `${fmtNumber(p.samplesPerSecond, 0)} samples/s` : null,
      `elapsed ${fmtDuration(p.elapsedSeconds)}`,
      kActive.has(j.state) ? `ETA ${fmtDuration(p.etaSeconds)}` : null,
      `attempt ${j.attempt ?? 1}`,
    ].filter(Boolean);
    setText(this.summary, parts.join(' · '));
    this.progressBar.value = Number.isFinite(p.percent) ? p.percent : 0;
    const reason = [j.reason, j.waitingReason, j.error].filter(Boolean).join(' — ');
    setText(this.reason, reason);
    this.buttons.stop.disabled = !kActive.has(j.state) || j.state === 'stopping';
    this.buttons.resume.disabled = !['stopped', 'interrupted', 'failed'].includes(j.state);
    this.buttons.export.disabled = j.state !== 'completed';
    if (!kActive.has(j.state)) {
      if (Array.isArray(j.history)) this.setHistory(j.history);
      else if (!this.historyRequested) this.loadHistory();
    }
    if (kActive.has(j.state)) this.follow();
  }

  /** The per-epoch history of an ended job (the sessions list leaves it out). */
  async loadHistory() {
    this.historyRequested = true;
    try {
      const job = await api(`/api/training/${encodeURIComponent(this.id)}`);
      if (Array.isArray(job.history)) this.setHistory(job.history);
    } catch {
      this.historyRequested = false;
    }
  }

  setHistory(history) {
    if (this.stream) return; // the live stream owns the curve
    const xs = [];
    const loss = [];
    const valLoss = [];
    const acc = [];
    const valAcc = [];
    for (const e of history) {
      if (!Number.isFinite(e.step)) continue;
      xs.push(e.step);
      loss.push(e.loss ?? null);
      valLoss.push(e.val_loss ?? null);
      acc.push(e.accuracy ?? e.mae ?? null);
      valAcc.push(e.val_accuracy ?? e.val_mae ?? null);
    }
    if (xs.length < this.lossChart.points) return; // keep the finer per-step curve we already drew
    this.lossChart.setData(xs, loss, valLoss);
    this.metricChart.setData(xs, acc, valAcc);
  }

  follow() {
    if (this.stream) return;
    this.stream = new SseStream(
      `/api/training/${encodeURIComponent(this.id)}/events`,
      {
        onEvent: (type, data) => this.onStreamEvent(type, data),
        onFatal: () => {
          this.stream = null;
        },
      },
      { once: true },
    );
    const stream = this.stream;
    stream.start();
    const watch = setInterval(() => {
      if (stream.stopped) {
        clearInterval(watch);
        if (this.stream === stream) this.stream = null;
        this.section.refreshSoon();
      }
    }, 1000);
  }

  onStreamEvent(type, data) {
    if (!data || typeof data !== 'object') return;
    if (type === 'snapshot') {
      this.update(data);
      return;
    }
    const p = { ...((this.job && this.job.progress) || {}) };
    if (type === 'progress') {
      Object.assign(p, data);
      if (p.totalSteps) p.percent = (100 * data.step) / p.totalSteps;
      const done = data.step - (this.startStep || 0);
      if (p.totalSteps && done > 0 && Number.isFinite(data.elapsedSeconds)) {
        p.etaSeconds = ((p.totalSteps - data.step) * data.elapsedSeconds) / done;
      }
      this.lossChart.append(data.step, data.loss ?? null, null);
      this.update({ progress: p });
    } else if (type === 'epoch') {
      p.metrics = data;
      p.epoch = data.epoch;
      this.lossChart.append(data.step, data.loss ?? null, data.val_loss ?? null);
      this.metricChart.append(data.step, data.accuracy ?? data.mae ?? null, data.val_accuracy ?? data.val_mae ?? null);
      this.update({ progress: p });
    } else if (type === 'started') {
      this.startStep = data.step || 0;
      Object.assign(p, { totalSteps: data.totalSteps, epochs: data.epochs, step: data.step });
      this.update({ progress: p });
    } else if (type === 'state') {
      this.update({ state: data.state, reason: data.reason });
    } else if (type === 'waiting') {
      this.update({ waitingReason: data.reason || data.message || '' });
    } else if (type === 'error') {
      this.update({ error: data.message || '' });
    }
    if (this.logsBox.open && (type === 'epoch' || type === 'state')) this.loadLogs();
  }

  async loadLogs() {
    try {
      const result = await api(`/api/training/${encodeURIComponent(this.id)}/logs?tail=40`);
      setText(this.logs, (result.lines || []).join('\n') || '(empty)');
    } catch (err) {
      setText(this.logs, err instanceof ApiError ? err.message : String(err));
    }
  }

  async act(action) {
    const button = this.buttons[action];
    button.disabled = true;
    try {
      const result = await api(`/api/training/${encodeURIComponent(this.id)}/${action}`, { method: 'POST', body: action === 'export' ? {} : undefined });
      if (action === 'export') {
        const model = result && result.model ? `${result.model.name}:${result.model.version}` : result.onnx;
        toast(`exported ${this.id}: ${model}`, 'info');
        this.app.emit('models-changed');
      } else {
        toast(`${action} ${this.id}: ${result.state}`, 'info');
        if (result && result.jobId) this.update(result);
      }
    } catch (err) {
      reportError(`${action} ${this.id}`, err);
    } finally {
      this.section.refreshSoon();
    }
  }

  destroy() {
    if (this.stream) this.stream.stop();
    this.lossChart.destroy();
    this.metricChart.destroy();
    this.el.remove();
  }
}

export function createTraining(app) {
  const section = document.getElementById('training');
  const note = section.querySelector('.section-note');
  const container = section.querySelector('.jobs');
  const cards = new Map();
  const api_ = {};
  let disabled = false;

  async function load() {
    let result;
    try {
      result = await api('/api/training/sessions');
    } catch (err) {
      if (err instanceof ApiError && err.disabled) {
        disabled = true;
        setText(note, `disabled: ${err.message}`);
        for (const card of cards.values()) card.destroy();
        cards.clear();
        return;
      }
      throw err;
    }
    disabled = false;
    const jobs = (result.sessions || []).slice().reverse().slice(0, kShownJobs);
    setText(note, jobs.length ? '' : 'No training jobs.');
    const ids = jobs.map((j) => j.jobId);
    for (const [id, card] of cards) {
      if (!ids.includes(id)) {
        card.destroy();
        cards.delete(id);
      }
    }
    jobs.forEach((job, index) => {
      let card = cards.get(job.jobId);
      if (!card) {
        card = new JobCard(job.jobId, app, api_);
        cards.set(job.jobId, card);
      }
      const at = container.children[index];
      if (at !== card.el) container.insertBefore(card.el, at || null);
      card.mount();
      card.update(job);
    });
  }

  api_.refreshSoon = throttle(() => load().catch(() => {}), 1000);

  function onEvent(event) {
    if ((event.type || '').startsWith('training.')) api_.refreshSoon();
  }

  /** Restart the per-job streams (after a reconnect of the main feed). */
  function restartStreams() {
    for (const card of cards.values()) {
      if (card.stream) {
        card.stream.stop();
        card.stream = null;
      }
    }
  }

  setInterval(() => {
    if (!document.hidden && app.live && !disabled) api_.refreshSoon();
  }, 20000);

  return {
    load: async () => {
      restartStreams();
      await load();
    },
    onEvent,
  };
}
