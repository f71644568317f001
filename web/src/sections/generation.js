// Generation (shown only when suites exist): prompt form (validated before sending), the
// queue with per-step previews from each job's SSE stream, and a gallery of results with
// their parameters, quality signals and the refinement decision.
import { api, apiResponse, ApiError, reportError, toast } from '../api.js';
import { SseStream } from '../sse.js';
import { h, setText, setChildren, fmtNumber, fmtTime, syncKeyed, throttle } from '../util.js';

const kActive = new Set(['queued', 'running']);
const kGalleryJobs = 12;
const kMaxSafeSeed = 9007199254740992;

function intField(form, name, min, max, multiple) {
  const raw = form.elements[name].value.trim();
  if (raw === '') return { value: undefined };
  if (!/^\d+$/.test(raw)) return { error: `${name} must be a whole number` };
  const value = Number(raw);
  if (value < min || value > max) return { error: `${name} must be between ${min} and ${max}` };
  if (multiple && value % multiple !== 0) return { error: `${name} must be a multiple of ${multiple}` };
  return { value };
}

/** Builds the POST /api/generation body from the form, or returns {error}. */
export function generationRequest(form, suites) {
  const prompt = form.elements.prompt.value;
  if (!prompt.trim()) return { error: 'write a prompt' };
  if (new TextEncoder().encode(prompt).length > 16384) return { error: 'the prompt is longer than 16384 bytes' };
  const suiteName = form.elements.suite.value;
  const suite = suites.find((s) => s.name === suiteName || s.id === suiteName);
  if (!suite) return { error: 'pick a suite' };
  const body = { suite: suite.name || suite.id, prompt };
  const fields = [
    ['steps', 1, 1000, 0],
    ['width', 64, 4096, 8],
    ['height', 64, 4096, 8],
    ['seed', 0, kMaxSafeSeed, 0],
  ];
  for (const [name, min, max, multiple] of fields) {
    const { value, error } = intField(form, name, min, max, multiple);
    if (error) return { error };
    if (value !== undefined) body[name] = value;
  }
  const mode = form.elements.refiner.value;
  if (mode) {
    if (mode === 'always' && !suite.hasRefiner) return { error: `suite ${suite.name} has no refiner` };
    body.refiner = { mode };
  }
  return { body };
}

function qualityText(q) {
  if (!q) return null;
  return [
    `sharpness ${fmtNumber(q.laplacianVariance, 4)}`,
    `noise ${fmtNumber(q.noiseResidual, 4)}`,
    `clipped ${fmtNumber((q.clippedFraction || 0) * 100, 2)}%`,
    `colourfulness ${fmtNumber(q.colourfulness, 1)}`,
    `luma ${fmtNumber(q.meanLuma, 3)}±${fmtNumber(q.stdLuma, 3)}`,
    q.nanCount || q.infCount ? `NaN ${q.nanCount} Inf ${q.infCount}` : null,
    q.flat ? 'flat' : null,
    q.black ? 'black' : null,
  ]
    .filter(Boolean)
    .join(' · ');
}

function parametersText(p) {
  if (!p) return '';
  return [
    `${p.width}×${p.height}`,
    `${p.steps} steps`,
    `guidance ${p.guidance}`,
    p.scheduler,
    `seed ${p.seed}`,
    p.refiner ? `refiner ${p.refiner.mode}` : null,
    p.vae ? `vae ${p.vae.name}${p.vae.tiled ? ' tiled' : ''}` : null,
  ]
    .filter(Boolean)
    .join(' · ');
}

export function createGeneration(app) {
  const section = document.getElementById('generation');
  const nav = document.getElementById('nav-generation');
  const note = section.querySelector('.section-note');
  const form = section.querySelector('form.generate');
  const queue = section.querySelector('ul.queue');
  const gallery = section.querySelector('.gallery');
  const queueItems = new Map();
  const galleryItems = new Map();
  const streams = new Map();
  const details = new Map(); // succeeded job id -> full job (with report)
  let suites = [];

  function show(visible) {
    section.hidden = !visible;
    nav.hidden = !visible;
  }

  function fillSuites() {
    const current = form.elements.suite.value;
    setChildren(
      form.elements.suite,
      suites.map((s) => h('option', { value: s.name, text: `${s.name} (${s.state}${s.hasRefiner ? ', refiner' : ''})` })),
    );
    if (suites.some((s) => s.name === current)) form.elements.suite.value = current;
  }

  function queueItem(id) {
    const el = h(
      'li',
      { class: 'gen-job', dataset: { jobId: id } },
      h('span', { class: 'gen-title' }),
      h('span', { class: 'gen-progress muted' }),
      h('progress', { max: 1, value: 0, 'aria-label': 'generation progress' }),
      h('img', { class: 'preview', alt: 'preview of the running generation', hidden: true }),
      h('button', { type: 'button', class: 'small', dataset: { action: 'cancel' }, onclick: () => cancel(id) }, 'Cancel'),
    );
    return el;
  }

  function updateQueueItem(job) {
    const el = queueItems.get(job.id);
    if (!el) return;
    const prompt = job.parameters ? job.parameters.prompt : '';
    setText(el.querySelector('.gen-title'), `${job.state} · ${job.suite} · “${prompt.length > 60 ? `${prompt.slice(0, 60)}…` : prompt}”`);
    const p = job.progress || {};
    setText(el.querySelector('.gen-progress'), ` ${p.stage || 'waiting'} ${p.step ?? 0}/${p.totalSteps ?? '?'}`);
    const bar = el.querySelector('progress');
    bar.value = p.totalSteps ? (p.step || 0) / p.totalSteps : 0;
  }

  function follow(job) {
    if (streams.has(job.id)) return;
    let current = { ...job };
    const stream = new SseStream(
      `/api/generation/${encodeURIComponent(job.id)}/events`,
      {
        onEvent: (type, data) => {
          if (!data || typeof data !== 'object') return;
          if (type === 'snapshot') current = { ...current, ...data };
          else if (type === 'stage') current.progress = { ...(current.progress || {}), stage: data.stage };
          else if (type === 'step') current.progress = { ...(current.progress || {}), step: data.step, totalSteps: data.totalSteps, stage: data.stage };
          else if (type === 'preview') {
            const img = queueItems.get(job.id)?.querySelector('img.preview');
            if (img && typeof data.image === 'string' && data.image.startsWith('data:image/')) {
              img.src = data.image;
              img.hidden = false;
            }
          } else if (['done', 'failed', 'cancelled'].includes(type)) {
            current.state = data.state || type;
            if (type !== 'done') toast(`generation ${job.id} ${type}: ${data.error || ''}`);
          }
          updateQueueItem(current);
        },
        onFatal: () => streams.delete(job.id),
      },
      { once: true },
    );
    streams.set(job.id, stream);
    stream.start();
    const watch = setInterval(() => {
      if (stream.stopped) {
        clearInterval(watch);
        streams.delete(job.id);
        refreshSoon();
      }
    }, 1000);
  }

  async function imageUrl(url) {
    const response = await apiResponse(url);
    return URL.createObjectURL(await response.blob());
  }

  function galleryItem(key) {
    return h('figure', { class: 'gen-image card', dataset: { key } });
  }

  async function fillGalleryItem(el, job, image) {
    const report = job.report || {};
    const refiner = report.refiner || {};
    const after = refiner.after ? refiner.after[image.index] : null;
    const before = refiner.before ? refiner.before[image.index] : null;
    const caption = h(
      'figcaption',
      {},
      h('p', { class: 'wrap', text: job.parameters ? job.parameters.prompt : '' }),
      h('p', { class: 'muted', text: `${parametersText({ ...job.parameters, seed: image.seed ?? (job.parameters || {}).seed })} · ${fmtTime(job.finishedAt)}` }),
      refiner.mode
        ? h('p', { class: 'refiner', dataset: { refine: String(Boolean(refiner.refine)) } }, `refiner ${refiner.mode}: ${refiner.refine ? `refined (${refiner.refinerSteps} steps)` : 'not refined'} — ${refiner.reason || ''}`)
        : null,
      before ? h('p', { class: 'muted', text: `base: ${qualityText(before)}` }) : null,
      h('p', { class: 'quality', text: qualityText(image.quality || after) || '' }),
    );
    const isPng = (image.contentType || 'image/png') === 'image/png';
    const img = isPng ? h('img', { alt: `generated image ${image.index} of ${job.id}`, loading: 'lazy', width: job.parameters?.width, height: job.parameters?.height }) : h('p', { class: 'muted', text: `latents: ${image.fileName}` });
    setChildren(el, img, caption);
    if (isPng) {
      try {
        img.src = await imageUrl(image.url || `/api/generation/${encodeURIComponent(job.id)}/images/${image.index}`);
      } catch (err) {
        img.alt = `image unavailable: ${err.message}`;
      }
    }
  }

  async function renderGallery(jobs) {
    const succeeded = jobs.filter((j) => j.state === 'succeeded').slice(0, kGalleryJobs);
    await Promise.all(
      succeeded
        .filter((j) => !details.has(j.id))
        .map((j) =>
          api(`/api/generation/${encodeURIComponent(j.id)}`)
            .then((full) => details.set(j.id, full))
            .catch(() => details.set(j.id, j)),
        ),
    );
    const entries = [];
    for (const j of succeeded) {
      const full = details.get(j.id) || j;
      for (const image of full.images || []) entries.push({ key: `${j.id}/${image.index}`, job: full, image });
    }
    const keys = new Set(entries.map((e) => e.key));
    for (const [key, el] of galleryItems) {
      // blob URLs of figures that leave the gallery are released with them
      const img = el.querySelector('img');
      if (!keys.has(key) && img && img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    }
    const fresh = new Set();
    syncKeyed(gallery, galleryItems, [...keys], (key) => {
      fresh.add(key);
      return galleryItem(key);
    });
    await Promise.all(entries.filter((e) => fresh.has(e.key)).map((e) => fillGalleryItem(galleryItems.get(e.key), e.job, e.image)));
  }

  async function load() {
    let suiteList;
    try {
      suiteList = await api('/api/suites');
    } catch (err) {
      if (err instanceof ApiError && err.disabled) {
        show(false);
        setText(note, `disabled: ${err.message}`);
        return;
      }
      throw err;
    }
    suites = suiteList.suites || [];
    if (!suites.length) {
      show(false);
      return;
    }
    show(true);
    fillSuites();
    const result = await api('/api/generation');
    const jobs = result.jobs || [];
    const active = jobs.filter((j) => kActive.has(j.state)).reverse();
    syncKeyed(queue, queueItems, active.map((j) => j.id), queueItem);
    setText(note, active.length ? '' : 'Queue empty.');
    for (const job of active) {
      updateQueueItem(job);
      follow(job);
    }
    await renderGallery(jobs);
  }

  const refreshSoon = throttle(() => load().catch(() => {}), 1500);

  async function cancel(id) {
    try {
      await api(`/api/generation/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      toast(`cancelling ${id}`, 'info');
    } catch (err) {
      reportError(`cancel ${id}`, err);
    }
    refreshSoon();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { body, error } = generationRequest(form, suites);
    if (error) {
      toast(error);
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const job = await api('/api/generation', { method: 'POST', body });
      toast(`queued ${job.id}`, 'info');
      await load();
    } catch (err) {
      reportError('generate', err);
    } finally {
      button.disabled = false;
    }
  });

  function onEvent(event) {
    const type = event.type || '';
    if (type.startsWith('generation.') || type.startsWith('suite.')) refreshSoon();
  }

  function restartStreams() {
    for (const stream of streams.values()) stream.stop();
    streams.clear();
  }

  setInterval(() => {
    if (!document.hidden && app.live && !section.hidden) refreshSoon();
  }, 10000);

  return {
    load: async () => {
      restartStreams();
      await load();
    },
    onEvent,
  };
}
