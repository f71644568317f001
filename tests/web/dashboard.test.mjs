#!/usr/bin/env node
// The dashboard at / in a real browser (Debian's chromium-headless-shell driven by puppeteer-core)
// against real deviceopsd processes on 127.0.0.1: the page loads cleanly, shows what the REST API
// says, its charts grow, its buttons load/unload models and stop a training job, auth prompts for
// a token, it fits a phone, and it survives a daemon restart.
//
// The DOM it relies on (keep stable in web/src): #status[data-state=live|reconnecting|offline];
// #devices .device-card[data-device-id] with .device-name, .device-vendor,
// .device-health[data-health]; div.chart[data-chart=util-|mem-|temp-|power-<deviceId>,
// loss-<jobId>][data-points=<x points drawn>];
// #models form.load-model (input[name=path], input[name=name], button[data-action=load]) and
// #models tr[data-model-id] button[data-action=unload]; #training .job[data-job-id] with .job-state
// and button[data-action=stop]; #auth-dialog with input[name=token], button[type=submit],
// .auth-error; #toast.
//
// Usage: node dashboard.test.mjs --daemon PATH --cli PATH --models DIR --out DIR
//   --cli:    the deviceops CLI (a second client whose changes the page must follow)
//   --models: the generated test models (tests/models: mlp.onnx, fashion_train_*.npy)
//   --out:    screenshots, daemon logs and data directories (the build tree)
// Exit status: 0 all cases passed, 1 a case failed, 77 no browser installed (CTest: skipped).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Daemon, runCli } from './daemon.mjs';
import {
  clickOn, countPerDevice, describeEntry, fillInput, horizontalOverflow, isResourceLog, PageWatch,
  pageState, waitForCards, waitForChartGrowth, waitForStatus, waitForToastGone, waitInPage,
} from './page.mjs';
import { kSlowTimeoutMs, kTimeoutMs, pollUntil } from './wait.mjs';

const kSkipped = 77;
const kSourceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kWebDir = path.join(kSourceDir, 'web');
const kSamplingSeconds = 1;
const kAuthToken = 'dashboard-token-5e2b7c91d04a';
const kDesktop = { width: 1440, height: 900 };
const kPhone = { width: 390, height: 844 };
// Every wait is bounded (wait.mjs); this only ends a run that hangs where none of them covers.
const kRunLimitMs = 200000;

function parseArguments(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (!['--daemon', '--cli', '--models', '--out'].includes(flag) || i + 1 >= argv.length) {
      throw new Error(`usage: dashboard.test.mjs --daemon PATH --cli PATH --models DIR --out DIR` +
                      ` (bad argument '${flag}')`);
    }
    options[flag.slice(2)] = path.resolve(argv[i + 1]);
  }
  for (const required of ['daemon', 'cli', 'models', 'out']) {
    if (!options[required]) throw new Error(`--${required} is required`);
  }
  return options;
}

// The headless shell's real binary from its Debian package (the /usr/bin entry is a sh wrapper);
// null when the package is not installed.
function findBrowser() {
  let files;
  try {
    files = execFileSync('dpkg', ['-L', 'chromium-headless-shell'], { encoding: 'utf8' });
  } catch {
    return null;
  }
  const binaries = files.split('\n').filter((file) => file.endsWith('/chromium-headless-shell'));
  const preferred = binaries.filter((file) => file.startsWith('/usr/lib/')).concat(binaries);
  return preferred.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  }) ?? null;
}

// web/dist is built by the deviceops_web target (part of `all`); build it here when it is
// missing or older than web/src, so the test never checks a stale bundle.
function newestSource(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const file = path.join(dir, entry.name);
    return Math.max(newest, entry.isDirectory() ? newestSource(file) : fs.statSync(file).mtimeMs);
  }, 0);
}

function ensureBundle() {
  const index = path.join(kWebDir, 'dist', 'index.html');
  const sources = Math.max(newestSource(path.join(kWebDir, 'src')),
                           fs.statSync(path.join(kWebDir, 'build.mjs')).mtimeMs);
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources) return;
  console.log('# web/dist missing or older than web/src: running node web/build.mjs');
  execFileSync(process.execPath, [path.join(kWebDir, 'build.mjs')], { cwd: kWebDir,
                                                                      stdio: 'inherit' });
  assert.ok(fs.existsSync(index), 'web/build.mjs did not write web/dist/index.html');
}


function mainConfig(modelRoot) {
  // Two simulated GPUs beside the CPU so the page has several cards; 1 s sampling so charts grow
  // within seconds.
  return `[server]
webRoot = ${JSON.stringify(kWebDir)}
[devices]
backends = ["cpu"]
pollIntervalMs = 500
[[devices.simulated]]
count = 1
name = "Simulated Alpha"
memory = "8GiB"
memoryUsed = "1GiB"
temperatureCelsius = 52.0
utilizationRatio = 0.4
[[devices.simulated]]
count = 1
name = "Simulated Beta"
memory = "4GiB"
temperatureCelsius = 41.0
[inference]
modelRoots = [${JSON.stringify(modelRoot)}]
[telemetry]
intervalSeconds = ${kSamplingSeconds}
[training]
stopGraceSeconds = 10
`;
}

// A 503 from a training route of the secured daemon, where training is off by configuration.
const isDisabledTraining = (entry) => entry.kind === 'status' && entry.status === 503 &&
                                      new URL(entry.url).pathname.startsWith('/api/training');

function securedConfig() {
  return `[server]
webRoot = ${JSON.stringify(kWebDir)}
[auth]
mode = "always"
[[auth.tokens]]
name = "dashboard"
token = "${kAuthToken}"
scope = "operate"
[devices]
backends = ["cpu"]
[telemetry]
intervalSeconds = ${kSamplingSeconds}
[training]
enabled = false
`;
}
const seconds = (since) => ((Date.now() - since) / 1000).toFixed(1);
const indent = (text, prefix) => text.replace(/^/gm, prefix);

// --- the run -------------------------------------------------------------------------------------

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const browserPath = findBrowser();
  if (!browserPath) {
    console.log('# SKIP: chromium-headless-shell is not installed (scripts/setup.sh installs it)');
    return kSkipped;
  }
  const requireFromWeb = createRequire(path.join(kWebDir, 'package.json'));
  const puppeteer = requireFromWeb('puppeteer-core');
  ensureBundle();

  const out = options.out;
  fs.mkdirSync(out, { recursive: true });
  const runDir = path.join(out, 'run');
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(runDir, 'model-root'), { recursive: true });
  const modelRoot = fs.realpathSync(path.join(runDir, 'model-root'));  // as the daemon reports it
  fs.copyFileSync(path.join(options.models, 'mlp.onnx'), path.join(modelRoot, 'mlp.onnx'));
  // The tiny SDXL suites (tests/models/make_sdxl_models.py) for the generation case.
  fs.cpSync(path.join(options.models, 'sdxl'), path.join(modelRoot, 'sdxl'), { recursive: true });

  const daemons = [];
  const browsers = [];
  const cleanUp = () => daemons.forEach((daemon) => daemon.killNow());
  process.on('exit', cleanUp);
  const started = Date.now();
  setTimeout(() => {
    console.log(`not ok - the run did not end within ${kRunLimitMs / 1000} s`);
    process.exit(1);
  }, kRunLimitMs).unref();
  let failures = 0;
  let caseNumber = 0;
  let stopRun = false;
  let page = null;

  // Runs one case; a failing `required` case ends the run (what follows needs its state).
  async function check(name, body, { required = false } = {}) {
    if (stopRun) return;
    caseNumber += 1;
    const caseStart = Date.now();
    try {
      await body();
      console.log(`ok ${caseNumber} - ${name} (${seconds(caseStart)} s)`);
    } catch (error) {
      failures += 1;
      console.log(`not ok ${caseNumber} - ${name} (${seconds(caseStart)} s)`);
      console.log(indent(String(error?.stack ?? error), '#   '));
      if (page) {
        const shot = path.join(out, `failure-${caseNumber}.png`);
        await page.screenshot({ path: shot }).then(() => console.log(`#   screenshot: ${shot}`),
                                                   () => {});
        console.log(`#   page: ${await pageState(page)}`);
      }
      for (const daemon of daemons) {
        console.log(`#   ${path.basename(daemon.dir)} log tail:`);
        console.log(indent(daemon.logTail(15), '#     '));
      }
      if (required) stopRun = true;
    }
  }

  try {
    const daemon = new Daemon(options.daemon, path.join(runDir, 'main'), mainConfig(modelRoot));
    daemons.push(daemon);
    await daemon.start();
    console.log(`# deviceopsd on ${daemon.url}; browser ${browserPath}`);

    // A training job that runs for minutes (the page stops it) on the CPU, started before the
    // browser so that its trainer starts up meanwhile.
    const readModelFile = (name) => fs.readFileSync(path.join(options.models, name));
    for (const [part, file] of [['features', 'fashion_train_features.npy'],
                                ['labels', 'fashion_train_labels.npy']]) {
      const upload = await daemon.request(
          'POST', `/api/training/data/upload?name=fashion&format=npy&part=${part}`,
          { body: readModelFile(file) });
      assert.equal(upload.status, 201, `dataset ${part}: ${JSON.stringify(upload.body)}`);
    }
    const job = await daemon.request('POST', '/api/training/start', { json: {
      name: 'dashboard-mlp', dataset: 'fashion', task: 'classification', devices: ['cpu0'],
      model: { type: 'mlp', hidden: [32] }, optimizer: { type: 'adam', learningRate: 0.001 },
      epochs: 500, batchSize: 64, validationSplit: 0.1, seed: 7, threads: 1,
      progressIntervalMs: 100 } });
    assert.equal(job.status, 201, `training start: ${JSON.stringify(job.body)}`);
    const jobId = job.body.jobId;

    const browser = await puppeteer.launch({
      executablePath: browserPath, headless: 'shell', args: ['--no-sandbox'],
      defaultViewport: kDesktop, protocolTimeout: kSlowTimeoutMs });
    browsers.push(browser);
    page = await browser.newPage();
    const watch = new PageWatch(page, 'main daemon');
    let deviceIds = [];

    await check('the page loads with no console errors and no failed requests', async () => {
      const response = await page.goto(`${daemon.url}/`, { timeout: kTimeoutMs });
      assert.equal(response.status(), 200, 'GET /');
      await waitForStatus(page, 'live');
      const devices = (await daemon.get('/api/device')).devices;
      deviceIds = devices.map((device) => device.id);
      await waitForCards(page, deviceIds);
      watch.assertClean(0);
    }, { required: true });

    await check('device cards match GET /api/device (ids, names, vendors, health)', async () => {
      const devices = (await daemon.get('/api/device')).devices;
      assert.equal(devices.length, 3, 'the cpu and two simulated devices');
      const expected = devices.map((device) => ({ id: device.id, name: device.name,
                                                  health: device.health.status }))
                           .sort((a, b) => a.id.localeCompare(b.id));
      const shown = (await page.$$eval('#devices .device-card', (cards) => cards.map((card) => ({
        id: card.dataset.deviceId,
        name: card.querySelector('.device-name')?.textContent.trim(),
        vendorShown: (card.querySelector('.device-vendor')?.textContent.trim() ?? '').length > 0,
        health: card.querySelector('.device-health')?.dataset.health,
      })))).sort((a, b) => a.id.localeCompare(b.id));
      assert.deepEqual(shown.map(({ id, name, health }) => ({ id, name, health })), expected);
      assert.ok(shown.every((card) => card.vendorShown), 'every card names its vendor');
    });

    await check('a device chart has points and gains new ones as samples arrive', async () => {
      const key = `util-${deviceIds.find((id) => id.startsWith('sim-')) ?? deviceIds[0]}`;
      const { first, later } = await waitForChartGrowth(page, key, kTimeoutMs);
      assert.ok(later > first, `${key}: ${first} -> ${later}`);
      for (const id of deviceIds) {
        for (const kind of ['util', 'mem', 'temp', 'power']) {
          assert.equal(await page.$$eval(`div.chart[data-chart="${kind}-${id}"]`,
                                         (charts) => charts.length), 1, `${kind}-${id} chart`);
        }
      }
    });

    await check('a training job\'s loss curve grows while it runs; its stop button stops it',
                async () => {
      await waitInPage(page, `#training .job[data-job-id="${jobId}"]`,
                       (id) => document.querySelector(`#training .job[data-job-id="${id}"]`),
                       [jobId], kSlowTimeoutMs);
      const { first, later } = await waitForChartGrowth(page, `loss-${jobId}`, kSlowTimeoutMs);
      const running = await daemon.get(`/api/training/${jobId}`);
      assert.equal(running.state, 'running', 'the job still runs while its curve grows');
      console.log(`#   loss-${jobId}: ${first} -> ${later} points`);
      await page.screenshot({ path: path.join(out, 'dashboard-desktop.png') });
      const mark = watch.mark();
      await clickOn(page, `#training .job[data-job-id="${jobId}"] button[data-action="stop"]`);
      const stopped = await pollUntil(`job ${jobId} to stop`, async () => {
        const view = await daemon.get(`/api/training/${jobId}`);
        return ['stopped', 'completed', 'failed', 'interrupted'].includes(view.state) && view;
      }, kSlowTimeoutMs);
      assert.equal(stopped.state, 'stopped');
      await waitInPage(page, 'the job card to show state stopped', (id) => {
        const state = document.querySelector(`#training .job[data-job-id="${id}"] .job-state`);
        return /stopped/i.test(state?.textContent ?? '');
      }, [jobId]);
      watch.assertClean(mark);
    });

    await check('loading a model from the page lists it in GET /api/inference/models; unloading ' +
                'removes it; loads by another client (the CLI) show up live', async () => {
      const mark = watch.mark();
      const modelPath = path.join(modelRoot, 'mlp.onnx');
      await fillInput(page, '#models form.load-model input[name="path"]', modelPath);
      await fillInput(page, '#models form.load-model input[name="name"]', 'dash-mlp');
      await clickOn(page, '#models form.load-model button[data-action="load"]');
      // Listed while it loads ("loading"), then "ready"; unload only a ready model (the daemon
      // answers 409 while it loads).
      const model = await pollUntil('dash-mlp ready in GET /api/inference/models', async () =>
          (await daemon.get('/api/inference/models')).models.find(
              (m) => m.name === 'dash-mlp' && m.state === 'ready'));
      assert.equal(model.path, modelPath);
      await waitInPage(page, `#models row for ${model.id}, ready`, (id) => {
        const row = document.querySelector(`#models tr[data-model-id="${id}"]`);
        return row && row.textContent.includes('ready');
      }, [model.id]);
      watch.assertClean(mark);

      await clickOn(page, `#models tr[data-model-id="${model.id}"] button[data-action="unload"]`);
      await pollUntil('dash-mlp gone from GET /api/inference/models', async () =>
          !(await daemon.get('/api/inference/models')).models.some((m) => m.id === model.id));
      await waitInPage(page, `#models row for ${model.id} to go`,
                       (id) => !document.querySelector(`#models tr[data-model-id="${id}"]`),
                       [model.id]);
      watch.assertClean(mark);

      // Another client (the CLI) loads and unloads: the page follows from its live feed.
      runCli(options.cli, daemon, ['models', 'load', modelPath, '--name', 'cli-mlp']);
      const cliModel = (await daemon.get('/api/inference/models')).models
                           .find((m) => m.name === 'cli-mlp');
      assert.ok(cliModel, 'the CLI loaded cli-mlp');
      await waitInPage(page, `#models row for ${cliModel.id} (loaded by the CLI)`,
                       (id) => document.querySelector(`#models tr[data-model-id="${id}"]`),
                       [cliModel.id]);
      runCli(options.cli, daemon, ['models', 'unload', cliModel.id]);
      await waitInPage(page, `#models row for ${cliModel.id} to go (unloaded by the CLI)`,
                       (id) => !document.querySelector(`#models tr[data-model-id="${id}"]`),
                       [cliModel.id]);
      watch.assertClean(mark);
    });

    await check('daemon restart on the same port: #status reconnecting, then live again with ' +
                'one card and one set of charts per device', async () => {
      const port = daemon.port;
      const mark = watch.mark();
      await daemon.halt('SIGKILL');
      await waitForStatus(page, 'reconnecting');
      await daemon.start(port);
      await waitForStatus(page, 'live', kSlowTimeoutMs);
      await waitForCards(page, deviceIds);
      // Let a few samples arrive on the new stream: duplicates would show up as extra charts.
      const key = `util-${deviceIds[0]}`;
      await waitForChartGrowth(page, key, kTimeoutMs);
      const counts = await countPerDevice(page, deviceIds);
      for (const id of deviceIds) {
        assert.deepEqual(counts[id], { card: 1, util: 1, mem: 1, temp: 1, power: 1 }, id);
      }
      const jobCards = await page.$$eval(`#training .job[data-job-id="${jobId}"]`,
                                         (jobs) => jobs.length);
      assert.equal(jobCards, 1, 'one card for the training job');
      // Requests to the dead daemon fail (and Chrome logs each); nothing else may go wrong.
      watch.assertClean(mark, (entry) => entry.kind === 'requestfailed' || isResourceLog(entry));
    });

    await check('at 390 px width there is no horizontal scroll', async () => {
      await page.setViewport(kPhone);
      await waitForCards(page, deviceIds);
      try {
        await waitInPage(page, 'no horizontal scroll', (width) =>
            document.documentElement.scrollWidth <= width, [kPhone.width], 5000);
        // Still so once the charts have redrawn with a new sample at this width.
        await waitForChartGrowth(page, `util-${deviceIds[0]}`, kTimeoutMs);
        const overflow = await horizontalOverflow(page);
        assert.ok(overflow.scrollWidth <= kPhone.width, JSON.stringify(overflow));
      } catch (error) {
        const overflow = JSON.stringify(await horizontalOverflow(page));
        throw new Error(`${error.message}; overflow: ${overflow}`);
      } finally {
        await waitForToastGone(page);
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: path.join(out, 'dashboard-phone.png') });
        await page.setViewport(kDesktop);
      }
    });

    await check('the desktop screenshot is written', async () => {
      await page.setViewport(kDesktop);
      await waitForToastGone(page);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(out, 'dashboard.png') });
      const size = fs.statSync(path.join(out, 'dashboard.png')).size;
      assert.ok(size > 10000, `dashboard.png is ${size} bytes`);
    });

    await check('Swagger UI groups the operations by tag and offers the served address', async () => {
      const swagger = await browser.newPage();
      const errors = [];
      swagger.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
      swagger.on('pageerror', (error) => errors.push(String(error)));
      await swagger.goto(`${daemon.url}/swagger/`, { timeout: kTimeoutMs, waitUntil: 'networkidle0' });
      await swagger.waitForSelector('.opblock-tag', { timeout: kTimeoutMs });
      const tags = await swagger.$$eval('.opblock-tag', (els) => els.map((e) => e.getAttribute('data-tag')));
      for (const tag of ['devices', 'memory', 'inference', 'kserve-v2', 'telemetry', 'live',
                         'training', 'suites', 'generation', 'testing', 'system']) {
        assert.ok(tags.includes(tag), `Swagger UI shows a "${tag}" group: ${tags}`);
      }
      assert.ok(!tags.includes('default'), `no untagged "default" group: ${tags}`);
      const servers = await swagger.$$eval('.servers select option', (els) => els.map((e) => e.value));
      assert.deepEqual(servers, ['/'], 'the one server is the address the page came from');
      assert.deepEqual(errors, [], 'Swagger UI logs no error');
      await swagger.close();
    });

    await check('bad input: an empty model path and one outside the model roots are refused ' +
                '(a 4xx, never a 5xx) and the page shows each refusal in #toast', async () => {
      const badMark = watch.mark();
      // No path at all: the page refuses it itself.
      await fillInput(page, '#models form.load-model input[name="path"]', ' ');
      await clickOn(page, '#models form.load-model button[data-action="load"]');
      await waitInPage(page, '#toast asking for a path', () => {
        const toast = document.querySelector('#toast');
        return toast && !toast.hidden && toast.textContent.trim().length > 0;
      });
      await waitForToastGone(page);
      await fillInput(page, '#models form.load-model input[name="path"]', '/etc/passwd');
      await fillInput(page, '#models form.load-model input[name="name"]', 'not-a-model');
      await clickOn(page, '#models form.load-model button[data-action="load"]');
      await waitInPage(page, '#toast with the refusal', () => {
        const toast = document.querySelector('#toast');
        return toast && !toast.hidden && /outside/.test(toast.textContent);
      });
      const refusals = watch.entries.slice(badMark).filter((entry) => entry.kind === 'status');
      assert.equal(refusals.length, 1, `one refused request: ${refusals.map(describeEntry)}`);
      assert.ok(refusals[0].status >= 400 && refusals[0].status < 500, describeEntry(refusals[0]));
      watch.assertClean(badMark, (entry) => entry === refusals[0] || isResourceLog(entry));
      assert.equal((await daemon.get('/api/inference/models')).count, 0);
    });

    await check('generation: once a suite exists the section shows; a prompt from the page ' +
                'makes an image in the gallery with its parameters and quality signals', async () => {
      const mark = watch.mark();
      assert.ok(await page.$eval('#generation', (section) => section.hidden),
                'no suite yet: the section is hidden');
      const imported = await daemon.request('POST', '/api/suites', {
        json: { name: 'tiny', path: 'sdxl/base', refinerPath: 'sdxl/refiner' } });
      assert.equal(imported.status, 201, JSON.stringify(imported.body).slice(0, 300));
      await waitInPage(page, '#generation to show the imported suite', () => {
        const section = document.querySelector('#generation');
        return section && !section.hidden &&
               [...section.querySelectorAll('select[name="suite"] option')]
                   .some((option) => option.value === 'tiny' || option.textContent.includes('tiny'));
      });
      const form = '#generation form.generate';
      await fillInput(page, `${form} textarea[name="prompt"]`, 'a lighthouse at dusk');
      await fillInput(page, `${form} input[name="steps"]`, '3');
      await fillInput(page, `${form} input[name="width"]`, '64');
      await fillInput(page, `${form} input[name="height"]`, '64');
      await fillInput(page, `${form} input[name="seed"]`, '7');
      await clickOn(page, `${form} button[type="submit"]`);
      await waitInPage(page, 'the generated image in the gallery', () =>
          [...document.querySelectorAll('#generation .gallery img')]
              .some((img) => img.complete && img.naturalWidth === 64 && img.naturalHeight === 64),
          [], kSlowTimeoutMs);
      const jobs = (await daemon.get('/api/generation')).jobs || [];
      const done = jobs.filter((job) => job.state === 'succeeded');
      assert.equal(done.length, 1, `one finished job: ${JSON.stringify(jobs).slice(0, 400)}`);
      assert.equal(done[0].parameters?.seed, 7, "the form's seed reached the job");
      const shown = await page.$eval('#generation .gallery', (gallery) => gallery.textContent);
      assert.match(shown, /64×64/, 'the gallery shows the image size');
      assert.match(shown, /3 steps/, 'the gallery shows the steps');
      assert.match(shown, /refine/, 'the gallery shows the refiner decision');
      watch.assertClean(mark, isResourceLog);
    });

    // A second daemon: auth required, training disabled (its routes answer 503).
    const secured = new Daemon(options.daemon, path.join(runDir, 'secured'), securedConfig());
    daemons.push(secured);
    const context = await browser.createBrowserContext();  // an empty sessionStorage
    const securedPage = await context.newPage();
    const securedWatch = new PageWatch(securedPage, 'secured daemon');

    await check('auth on: the token prompt appears, a wrong token shows an error, the right one ' +
                'loads the data; the token stays in sessionStorage', async () => {
      await secured.start();
      assert.equal((await secured.request('GET', '/api/device')).status, 401);
      await securedPage.goto(`${secured.url}/`, { timeout: kTimeoutMs });
      const dialogShown = () => {
        const dialog = document.querySelector('#auth-dialog');
        return Boolean(dialog) && !dialog.hidden && dialog.getClientRects().length > 0 &&
               getComputedStyle(dialog).visibility !== 'hidden';
      };
      await waitInPage(securedPage, '#auth-dialog to appear', dialogShown);
      await securedPage.type('#auth-dialog input[name="token"]', 'wrong-token-000000000000');
      await clickOn(securedPage, '#auth-dialog button[type="submit"]');
      await waitInPage(securedPage, 'the .auth-error text', () =>
          document.querySelector('#auth-dialog .auth-error')?.textContent.trim().length > 0);
      assert.ok(await securedPage.evaluate(dialogShown), 'the prompt stays after a wrong token');
      await fillInput(securedPage, '#auth-dialog input[name="token"]', kAuthToken);
      await clickOn(securedPage, '#auth-dialog button[type="submit"]');
      await waitInPage(securedPage, '#auth-dialog to close', () => {
        const dialog = document.querySelector('#auth-dialog');
        return !dialog || dialog.hidden || dialog.getClientRects().length === 0 ||
               getComputedStyle(dialog).visibility === 'hidden';
      });
      await waitForStatus(securedPage, 'live');
      const ids = (await secured.get('/api/device', { token: kAuthToken })).devices
                      .map((device) => device.id);
      await waitForCards(securedPage, ids);
      const stored = await securedPage.evaluate(() => ({
        url: location.href,
        local: JSON.stringify({ ...localStorage }),
        session: JSON.stringify({ ...sessionStorage }),
      }));
      assert.ok(!stored.url.includes(kAuthToken), 'the token is not in the URL');
      assert.ok(!stored.local.includes(kAuthToken), 'the token is not in localStorage');
      assert.ok(stored.session.includes(kAuthToken), 'the token is kept in sessionStorage');
      // 401s (and Chrome's console line for each) and the disabled training routes' 503s only.
      securedWatch.assertClean(0, (entry) => (entry.kind === 'status' && entry.status === 401) ||
                                             isDisabledTraining(entry) || isResourceLog(entry));
    });

    await check('a disabled component (training: 503) is shown as disabled and not polled',
                async () => {
      await waitInPage(securedPage, '#training .section-note saying disabled', () =>
          /disabled/i.test(document.querySelector('#training .section-note')?.textContent ?? ''));
      const before = securedWatch.entries.filter(isDisabledTraining).length;
      assert.ok(before >= 1, 'the page asked for training once');
      // A few sampling intervals later: no further training requests.
      await waitForChartGrowth(securedPage, 'util-cpu0', kTimeoutMs);
      await waitForChartGrowth(securedPage, 'util-cpu0', kTimeoutMs);
      const after = securedWatch.entries.filter(isDisabledTraining).length;
      assert.equal(after, before, 'the page polls a disabled component');
      assert.ok(securedWatch.responses.filter((entry) => entry.status >= 500)
                    .every(isDisabledTraining), securedWatch.serverErrors().join('\n'));
    });
    await context.close();
    await secured.halt('SIGTERM');

    await check('over the whole run: the server never answered the page with a 5xx, and the ' +
                'page reported no error or failed request that no case provoked', async () => {
      assert.ok(watch.responses.length > 10, `${watch.responses.length} responses seen`);
      assert.deepEqual(watch.serverErrors(), []);
      assert.deepEqual(watch.unexpected(), []);
    });

    if (failures === 0) {
      fs.rmSync(path.join(runDir, 'main', 'data'), { recursive: true, force: true });
      fs.rmSync(path.join(runDir, 'secured', 'data'), { recursive: true, force: true });
    }
  } catch (error) {
    failures += 1;
    console.log(`not ok - setup: ${String(error?.stack ?? error).replace(/\n/g, '\n#   ')}`);
    for (const daemon of daemons) console.log(`# ${daemon.dir}:\n${daemon.logTail()}`);
  } finally {
    for (const browser of browsers) await browser.close().catch(() => {});
    for (const daemon of daemons) await daemon.halt('SIGTERM').catch(() => {});
  }
  console.log(`# ${caseNumber} cases, ${failures} failed, ${seconds(started)} s;` +
              ` screenshots in ${out}`);
  return failures === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});
