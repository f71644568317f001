// deviceopsd processes for the browser test: started on 127.0.0.1 (port 0 or a given port, to
// restart on the same address), each with its own directory, REST calls with fetch(), and the CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { pollUntil } from './wait.mjs';

// One deviceopsd process with its own directory (config.toml, data/, daemon.log) under `dir`.
export class Daemon {
  constructor(binary, dir, configToml) {
    this.binary = binary;
    this.dir = dir;
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.toml'), configToml);
    this.port = 0;
    this.child = null;
    this.starts = 0;
  }

  // Starts the daemon on `port` (0: any free port) and waits for its ready file.
  async start(port = 0) {
    const readyFile = path.join(this.dir, 'ready');
    fs.rmSync(readyFile, { force: true });
    this.starts += 1;
    const log = fs.openSync(path.join(this.dir, `daemon-${this.starts}.log`), 'w');
    this.child = spawn(this.binary, ['--listen', `127.0.0.1:${port}`, '--ready-file', readyFile,
                                     '--data-dir', path.join(this.dir, 'data'),
                                     '--config', path.join(this.dir, 'config.toml')],
                       { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const child = this.child;
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(
        `exited (${signal ?? code}) before it was ready`)));
    child.exitedPromise = exited.then(() => true);
    const address = await Promise.race([
      pollUntil(`${this.dir}/ready`, () => {
        try {
          return fs.readFileSync(readyFile, 'utf8').trim();
        } catch {
          return '';
        }
      }, 60000),
      exited.then((why) => { throw new Error(`deviceopsd ${why}: ${this.logTail()}`); }),
    ]);
    this.port = Number(address.slice(address.lastIndexOf(':') + 1));
    assert.ok(this.port > 0, `ready file holds '${address}'`);
    if (port !== 0) assert.equal(this.port, port, 'the daemon bound the port it was given');
    return this;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  // Ends the process with `signal` and waits for it (SIGKILL after 20 s).
  async halt(signal = 'SIGKILL') {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    await child.exitedPromise;
    clearTimeout(timer);
  }

  killNow() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
    }
  }

  logTail(lines = 25) {
    try {
      const text = fs.readFileSync(path.join(this.dir, `daemon-${this.starts}.log`), 'utf8');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  // A REST call; resolves to {status, body (parsed JSON when possible)}.
  async request(method, target, { json, body, headers = {}, token } = {}) {
    const init = { method, headers: { ...headers } };
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
      init.headers['Content-Type'] = 'application/octet-stream';
    }
    const response = await fetch(this.url + target, init);
    const text = await response.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed };
  }

  async get(target, options) {
    const reply = await this.request('GET', target, options);
    assert.equal(reply.status, 200, `GET ${target}: ${JSON.stringify(reply.body).slice(0, 300)}`);
    return reply.body;
  }
}

// Runs the deviceops CLI against `daemon`; throws with its output when it exits non-zero.
export function runCli(cli, daemon, args) {
  try {
    return execFileSync(cli, ['--url', daemon.url, ...args], { encoding: 'utf8', timeout: 60000,
                                                               stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    throw new Error(`deviceops ${args.join(' ')}: exit ${error.status}: ${output}`);
  }
}
