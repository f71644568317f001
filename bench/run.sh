#!/usr/bin/env bash
# bench/run.sh <build-dir>: the benchmarks of docs/BENCHMARKS.md, each beside its baseline, run
# on this machine in this one command.
#   1. HTTP: GET /api/device and GET /health, deviceopsd against nginx serving the same bytes as
#      static files (wrk, keep-alive). deviceopsd runs twice: with its access log (info, stderr
#      redirected to a file) and with --log-level warn (no access lines).
#   2. Enumeration: enumeration_bench (Google Benchmark, in-process), then fresh-process runs of
#      our enumeration beside `vulkaninfo --summary` (and `nvidia-smi -L` where present).
# Prints Markdown tables (also in <build-dir>/bench-results/summary.md); raw outputs go to
# <build-dir>/bench-results/, which is inside the ignored build tree, so nothing is committed.
#
# Knobs (environment): DURATION=10s WARMUP=2s THREADS=2 CONNECTIONS=64 ROUNDS=5 COLD_RUNS=20
#                      SKIP_HTTP=1 or SKIP_ENUMERATION=1 to run only one half.
#                      BENCH_NICE=-10 runs everything (servers, wrk, baselines alike) at that
#                      niceness (less disturbance from other jobs; other cgroups still compete).
# Needs: wrk, nginx (nginx-light), curl, python3, hyperfine (wall times from a plain Python loop
# are recorded too, with each process's CPU time): `scripts/setup.sh --bench` installs them.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: bench/run.sh <build-dir>" >&2
  exit 2
fi
BUILD="$(cd "$1" && pwd)"
DAEMON="$BUILD/src/deviceopsd"
ENUMERATION_BENCH="$BUILD/bench/enumeration_bench"
RESULTS="$BUILD/bench-results"

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
ROUNDS="${ROUNDS:-5}"
COLD_RUNS="${COLD_RUNS:-20}"
SKIP_HTTP="${SKIP_HTTP:-0}"
SKIP_ENUMERATION="${SKIP_ENUMERATION:-0}"
BENCH_NICE="${BENCH_NICE:-}"
if [ -n "$BENCH_NICE" ]; then
  renice -n "$BENCH_NICE" -p $$ >/dev/null || echo "bench: cannot renice to $BENCH_NICE" >&2
fi

for binary in "$DAEMON" "$ENUMERATION_BENCH"; do
  if [ ! -x "$binary" ]; then
    echo "bench: $binary is missing; build with scripts/setup.sh $1 (DEVICEOPS_BENCH=ON)" >&2
    exit 1
  fi
done


# The benchmark's packages come from `scripts/setup.sh --bench` (scripts/packages-bench.txt),
# which `make bench` runs first.
for program in wrk curl vulkaninfo hyperfine; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "bench: $program is missing; run scripts/setup.sh --bench (or make bench)" >&2
    exit 1
  fi
done
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "bench: nginx is missing; run scripts/setup.sh --bench (or make bench)" >&2
  exit 1
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
SUMMARY="$RESULTS/summary.md"
: >"$SUMMARY"
say() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

# --- processes we start, stopped on every exit path -------------------------------------------
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU time (user + system, in clock ticks) of a process and its direct children.
cpu_ticks() {
  local total=0 pid fields
  for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    if [ -r "/proc/$pid/stat" ]; then
      fields=$(sed 's/^.*) //' "/proc/$pid/stat")
      total=$((total + $(echo "$fields" | awk '{print $12 + $13}')))
    fi
  done
  echo "$total"
}

# --- machine facts -----------------------------------------------------------------------------
say "## Machine"
say ""
say "- CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), nproc=$(nproc)"
say "- Virtualisation: $(lscpu 2>/dev/null | awk -F': *' '/Hypervisor vendor/ {print $2}' | grep . || echo none)"
say "- Memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
say "- Kernel: $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
say "- Load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min); niceness of this run: $(ps -o ni= -p $$ | tr -d ' ')"
say "- wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(command -v hyperfine >/dev/null && hyperfine --version || echo 'no hyperfine')"
say ""

# --- 1. HTTP ------------------------------------------------------------------------------------
# Daemons by name ("info", "warn"): pid and host:port.
declare -A DAEMON_PIDS DAEMON_ADDRESSES
start_daemon() {  # name log-level
  local name="$1" level="$2" dir="$RESULTS/http/$1" pid
  mkdir -p "$dir/data"
  rm -f "$dir/ready"
  printf '[server]\nioThreads = 2\nworkerThreads = 4\n' >"$dir/config.toml"
  "$DAEMON" --listen 127.0.0.1:0 --ready-file "$dir/ready" --data-dir "$dir/data" \
    --config "$dir/config.toml" --log-level "$level" 2>>"$dir/stderr.log" >/dev/null &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 300); do
    [ -s "$dir/ready" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "bench: deviceopsd ($name) exited" >&2; tail "$dir/stderr.log" >&2; exit 1; }
    sleep 0.1
  done
  DAEMON_PIDS[$name]=$pid
  DAEMON_ADDRESSES[$name]="$(tr -d '\n' <"$dir/ready")"
}

# Restarts a daemon that is gone. (On a shared machine, something outside this script may stop
# every deviceopsd; the restart is recorded in restarts.txt and shows in the summary.)
ensure_daemon() {  # name log-level
  if ! kill -0 "${DAEMON_PIDS[$1]}" 2>/dev/null; then
    echo "$(date +%T) deviceopsd ($1) was gone; restarted" | tee -a "$RESULTS/http/restarts.txt" >&2
    start_daemon "$1" "$2"
  fi
}

start_nginx() {  # prefix port -> sets NGINX_PID
  local prefix="$1" port="$2"
  mkdir -p "$prefix/tmp"
  cat >"$prefix/nginx.conf" <<EOF
worker_processes 2;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  types { }
  default_type application/json;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:$port;
    root $prefix/www;
  }
}
EOF
  "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -g 'daemon off;' &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
    sleep 0.1
  done
  echo "bench: nginx did not start" >&2
  cat "$prefix/error.log" >&2
  exit 1
}

# run_wrk label url pid: warm-up, then the measured run; appends the server's CPU ticks.
# Fails when wrk could not connect or the server died during the run.
run_wrk() {
  local label="$1" url="$2" pid="$3" out="$RESULTS/http/wrk/$1.txt" before after
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null 2>&1 || return 1
  before=$(cpu_ticks "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out" 2>&1 || return 1
  after=$(cpu_ticks "$pid")
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q '^Requests/sec' "$out" || return 1
  echo "server_cpu_ticks: $((after - before)) hz=$(getconf CLK_TCK)" >>"$out"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
}

# measure server endpoint path round: one wrk run against nginx or a daemon (retried once, after
# restarting a daemon that went away). A run that fails twice is left out of the medians.
measure() {
  local server="$1" endpoint="$2" path="$3" round="$4" label attempt
  label="$endpoint.deviceops-$server.r$round"
  [ "$server" = nginx ] && label="$endpoint.nginx.r$round"
  for attempt in 1 2; do
    if [ "$server" = nginx ]; then
      run_wrk "$label" "http://$NGINX_ADDRESS$path" "$NGINX_PID" && return 0
    else
      ensure_daemon "$server" "$server"
      run_wrk "$label" "http://${DAEMON_ADDRESSES[$server]}$path" "${DAEMON_PIDS[$server]}" &&
        return 0
      ensure_daemon "$server" "$server"
    fi
    echo "bench: run $label failed (attempt $attempt)" >&2
  done
  mv "$RESULTS/http/wrk/$label.txt" "$RESULTS/http/failed.$label.txt" 2>/dev/null || true
}

if [ "$SKIP_HTTP" != 1 ]; then
  mkdir -p "$RESULTS/http/wrk"
  start_daemon info info
  start_daemon warn warn
  WARN_ADDRESS="${DAEMON_ADDRESSES[warn]}"

  # nginx serves what the daemon just answered, byte for byte, at the same paths.
  NGINX_PREFIX="$RESULTS/http/nginx"
  mkdir -p "$NGINX_PREFIX/www/api"
  curl -sf "http://$WARN_ADDRESS/api/device" >"$NGINX_PREFIX/www/api/device"
  curl -sf "http://$WARN_ADDRESS/health" >"$NGINX_PREFIX/www/health"
  NGINX_PORT="$(free_port)"
  start_nginx "$NGINX_PREFIX" "$NGINX_PORT"
  NGINX_ADDRESS="127.0.0.1:$NGINX_PORT"
  for path in api/device health; do
    curl -s -D - -o /dev/null "http://$WARN_ADDRESS/$path" >"$RESULTS/http/headers.deviceops.${path//\//_}.txt"
    curl -s -D - -o /dev/null "http://$NGINX_ADDRESS/$path" >"$RESULTS/http/headers.nginx.${path//\//_}.txt"
  done

  echo "bench: HTTP, $ROUNDS rounds of $WARMUP warm-up + $DURATION per run" >&2
  for round in $(seq 1 "$ROUNDS"); do
    for endpoint in device health; do
      path=/api/device
      [ "$endpoint" = health ] && path=/health
      # Reverse the order every round so that neither server always runs first; the warn daemon
      # always runs right next to nginx, so each round is a pair measured under similar load.
      if [ $((round % 2)) -eq 1 ]; then order="nginx warn info"; else order="info warn nginx"; fi
      for server in $order; do
        echo "bench:   round $round $endpoint $server" >&2
        measure "$server" "$endpoint" "$path" "$round"
      done
    done
  done

  python3 - "$RESULTS/http" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP" <<'PY' | tee -a "$SUMMARY"
import os, re, statistics, sys
root, threads, connections, duration, warmup = sys.argv[1:]
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
runs = {}  # (endpoint, server) -> {round: measurements}
for name in sorted(os.listdir(f"{root}/wrk")):
    endpoint, server, round_name, _ = name.split(".", 3)
    text = open(f"{root}/wrk/{name}").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    requests, seconds = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text).groups()[:2]
    seconds = float(seconds) / (1000 if re.search(r"requests in [\d.]+ms", text) else 1)
    ticks, hz = map(int, re.search(r"server_cpu_ticks: (-?\d+) hz=(\d+)", text).groups())
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text): errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(map(int, m.groups()))
    runs.setdefault((endpoint, server), {})[round_name] = dict(
        rps=rps, p50=p50, p99=p99, cpu_us=ticks / hz * 1e6 / max(int(requests), 1),
        cores=ticks / hz / seconds, errors=errors)
size = lambda p: os.path.getsize(f"{root}/nginx/www/{p}")
print(f"## HTTP: deviceopsd vs nginx (wrk -t{threads} -c{connections} -d{duration} --latency, "
      f"after {warmup} warm-up; median of {len(runs.get(('device', 'nginx'), {}))} rounds)")
print()
print(f"Bodies: /api/device {size('api/device')} bytes, /health {size('health')} bytes "
      "(nginx serves the daemon's own answer captured with curl). `vs nginx` = the median over "
      "rounds of (this run's req/s / the same round's nginx req/s); `cores` = server CPU time / "
      "run time.")
print()
print("| endpoint | server | req/s | p50 ms | p99 ms | server CPU µs/req | cores | errors | vs nginx | req/s per round |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
labels = {"nginx": "nginx (static file)", "deviceops-info": "deviceopsd, access log to file",
          "deviceops-warn": "deviceopsd, --log-level warn"}
for endpoint, path in (("device", "/api/device"), ("health", "/health")):
    base = runs.get((endpoint, "nginx"), {})
    for server in ("nginx", "deviceops-info", "deviceops-warn"):
        rs = runs.get((endpoint, server))
        if not rs: continue
        med = lambda k: statistics.median(r[k] for r in rs.values())
        ratios = [r["rps"] / base[n]["rps"] for n, r in rs.items() if n in base]
        ratio = f"{statistics.median(ratios):.0%}" if ratios else "n/a"
        per_round = ", ".join(format(rs[n]["rps"], ",.0f") for n in sorted(rs))
        print(f"| `{path}` | {labels[server]} | {med('rps'):,.0f} | {med('p50'):.2f} | "
              f"{med('p99'):.2f} | {med('cpu_us'):.1f} | {med('cores'):.2f} | "
              f"{sum(r['errors'] for r in rs.values())} | {ratio} | {per_round} |")
print()
PY
  say "- Load after HTTP: $(cut -d' ' -f1-3 /proc/loadavg)"
  say "- Access lines written by the info daemon: $(grep -c ' access ' "$RESULTS/http/info/stderr.log" || true) ($(du -h "$RESULTS/http/info/stderr.log" | cut -f1)); the log is cut to its last 1000 lines afterwards"
  tail -n 1000 "$RESULTS/http/info/stderr.log" >"$RESULTS/http/info/stderr.tail.log"
  rm -f "$RESULTS/http/info/stderr.log"
  if [ -s "$RESULTS/http/restarts.txt" ]; then
    say "- Daemon restarts during the run (stopped from outside): $(wc -l <"$RESULTS/http/restarts.txt")"
  fi
  if ls "$RESULTS"/http/failed.* >/dev/null 2>&1; then
    say "- Runs left out after failing twice: $(cd "$RESULTS/http" && ls failed.* | tr '\n' ' ')"
  fi
  say ""
  cleanup
  PIDS=()
fi

# --- 2. Enumeration -------------------------------------------------------------------------------
if [ "$SKIP_ENUMERATION" != 1 ]; then
  mkdir -p "$RESULTS/enumeration"
  echo "bench: enumeration (Google Benchmark, in-process)" >&2
  "$ENUMERATION_BENCH" --benchmark_out="$RESULTS/enumeration/gbench.json" \
    --benchmark_out_format=json >"$RESULTS/enumeration/gbench.txt" 2>&1

  echo "bench: enumeration, fresh processes ($COLD_RUNS runs each)" >&2
  COMMANDS=("vulkaninfo --summary")
  command -v nvidia-smi >/dev/null 2>&1 && COMMANDS+=("nvidia-smi -L")
  for backend in cpu vulkan nvidia amd inventory; do
    COMMANDS+=("$ENUMERATION_BENCH --cold-once $backend")
  done
  # Wall time from outside: hyperfine when installed.
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N -i --warmup 3 --runs "$COLD_RUNS" --export-json "$RESULTS/enumeration/hyperfine.json" \
      "${COMMANDS[@]}" >"$RESULTS/enumeration/hyperfine.txt" 2>&1
  fi
  # The same commands in a plain loop: wall time, the child's CPU time (user + system, from
  # getrusage; robust against other load on the machine) and the program's own output, whose
  # ms= is the in-process time of construct + open() + first poll().
  python3 - "$COLD_RUNS" "$RESULTS/enumeration/loop.json" "${COMMANDS[@]}" <<'PY'
import json, resource, shlex, subprocess, sys, time
runs, out, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
results = []
for command in commands:
    wall, cpu, stdout = [], [], []
    for i in range(runs + 3):  # 3 warm-up runs, as for hyperfine
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter_ns()
        done = subprocess.run(shlex.split(command), capture_output=True, text=True)
        elapsed = (time.perf_counter_ns() - started) / 1e6
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i < 3: continue
        wall.append(elapsed)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3)
        stdout.append(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    results.append({"command": command, "wall_ms": wall, "cpu_ms": cpu, "stdout": stdout})
json.dump({"results": results}, open(out, "w"), indent=1)
PY

  python3 - "$RESULTS/enumeration" "$ENUMERATION_BENCH" "$COLD_RUNS" <<'PY' | tee -a "$SUMMARY"
import json, os, re, statistics, sys
root, bench, runs = sys.argv[1], sys.argv[2], sys.argv[3]
gbench = json.load(open(f"{root}/gbench.json"))["benchmarks"]
def unit_ms(b, key):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b[key] * scale
def shown(t):
    return f"{t:.2f} ms" if t >= 0.1 else f"{t * 1000:.1f} µs"
print("## Enumeration, in-process (enumeration_bench, Google Benchmark)")
print()
print("`time` is wall time per iteration; `CPU` is the calling thread's CPU time (the Inventory's "
      "backends run on their own threads, so its CPU column undercounts).")
print()
print("| benchmark | time | CPU | iterations | devices | skipped because |")
print("|---|---:|---:|---:|---:|---|")
for b in gbench:
    name = b["name"].split("/manual_time")[0]
    if b.get("error_occurred"):
        print(f"| {name} | skipped | | | | {b.get('error_message', '')} |")
        continue
    print(f"| {name} | {shown(unit_ms(b, 'real_time'))} | {shown(unit_ms(b, 'cpu_time'))} | "
          f"{b['iterations']} | {b.get('devices', 0):.0f} | |")
print()
print(f"## Enumeration in a fresh process ({runs} runs each after 3 warm-up runs; page cache warm)")
print()
print("`wall` = the whole process (exec, dynamic linking, work, exit), from outside; `CPU` = the "
      "process's user + system time; `in-process` = construct + open() + first poll() as "
      "enumeration_bench times it itself.")
print()
hyper = {}
if os.path.exists(f"{root}/hyperfine.json"):
    for r in json.load(open(f"{root}/hyperfine.json"))["results"]:
        hyper[r["command"]] = [t * 1000 for t in r["times"]]
print("| command | wall median ms (hyperfine) | wall median ms (loop) | CPU median ms | in-process median ms | result |")
print("|---|---:|---:|---:|---:|---|")
for r in json.load(open(f"{root}/loop.json"))["results"]:
    command = r["command"].replace(bench, "enumeration_bench")
    hf = f"{statistics.median(hyper[r['command']]):.1f}" if r["command"] in hyper else "n/a"
    inproc, result = "", ""
    if "--cold-once" in command:
        values = [float(re.search(r"ms=([\d.]+)", line).group(1)) for line in r["stdout"]]
        inproc = f"{statistics.median(values):.1f}"
        last = r["stdout"][-1]
        devices = re.search(r"devices=(\d+)", last)
        result = (f"skipped: {last.split('skipped=', 1)[1]}" if devices is None
                  else f"{devices.group(1)} device(s)")
    print(f"| `{command}` | {hf} | {statistics.median(r['wall_ms']):.1f} | "
          f"{statistics.median(r['cpu_ms']):.1f} | {inproc} | {result} |")
print()
PY
fi

# 3. Memory (issue 3): in-process raw backend vs pool vs ledger, then the HTTP round trip.
if [ "${SKIP_MEMORY:-0}" != 1 ] && [ -x "$BUILD/bench/memory_bench" ]; then
  echo "bench: memory" >&2
  say ""
  say "## Memory: allocate+free, raw backend vs pool vs ledger (in-process)"
  say ""
  say '```'
  "$BUILD/bench/memory_bench" --benchmark_min_time=0.3 2>/dev/null \
    | grep -E '^(Benchmark|Raw|Pool|NoPool|Ledger)' | tee "$RESULTS/memory_bench.txt" | tee -a "$RESULTS/summary.md"
  say '```'
  MEMORY_DIR="$(mktemp -d)"
  "$DAEMON" --listen 127.0.0.1:0 --ready-file "$MEMORY_DIR/ready" --data-dir "$MEMORY_DIR/data" \
    --log-level warn 2> "$MEMORY_DIR/daemon.log" &
  MEMORY_PID=$!
  for _ in $(seq 1 200); do [ -s "$MEMORY_DIR/ready" ] && break; sleep 0.05; done
  MEMORY_PORT="$(cut -d: -f2 "$MEMORY_DIR/ready")"
  say ""
  say "## Memory: HTTP round trip (one keep-alive connection, 1 MiB, 3000 pairs)"
  say ""
  say '```'
  "$BUILD/bench/memory_roundtrip" "$MEMORY_PORT" cpu0 1048576 3000 | tee -a "$RESULTS/summary.md"
  say '```'
  kill "$MEMORY_PID"; wait "$MEMORY_PID" 2>/dev/null || true
  rm -rf "$MEMORY_DIR"
fi

# 4. Telemetry (issue 5): sampling CPU at 1 Hz (with vs without the sampler), insert rate and
# statistics over 30 days of 1 Hz samples, SQLite and PostgreSQL 15 (started by the program).
if [ "${SKIP_TELEMETRY:-0}" != 1 ] && [ -x "$BUILD/bench/telemetry_bench" ]; then
  echo "bench: telemetry (about 3 minutes: 2 x 20 s of sampling, then a 2.6 M-row load per store)" >&2
  say ""
  say "## Telemetry: sampling CPU, insert rate, 30-day statistics (SQLite and PostgreSQL 15)"
  say ""
  say '```'
  "$BUILD/bench/telemetry_bench" --benchmark_out="$RESULTS/telemetry_bench.json" \
    --benchmark_out_format=json 2>/dev/null \
    | grep -E '^(Benchmark|BM_)' | tee "$RESULTS/telemetry_bench.txt" | tee -a "$RESULTS/summary.md"
  say '```'
fi

# 5. Inference (issue 4): ONNX Runtime in-process vs deviceopsd's KServe v2 JSON, binary, and
# binary with dynamic batching; a tiny MLP, the small CNN and a ResNet-18-sized CNN.
if [ "${SKIP_INFERENCE:-0}" != 1 ] && [ -x "$BUILD/bench/inference_bench" ]; then
  cmake --build "$BUILD" --target deviceops_bench_models >&2
  INFERENCE_SECONDS="${INFERENCE_SECONDS:-4}"
  for model in mlp cnn resnet18ish; do
    echo "bench: inference $model" >&2
    say ""
    say "## Inference: $model (requests/s and latency, side by side)"
    say ""
    "$BUILD/bench/inference_bench" --model "$BUILD/test-models/$model.onnx" \
      --seconds "$INFERENCE_SECONDS" --concurrency 1,8,32 | tee -a "$RESULTS/summary.md"
  done
fi

# 6. Training (issue 6): a bare libtorch loop vs deviceops-trainer vs the same model in PyTorch
# (Debian python3-torch), Fashion-MNIST MLP, 1 and 2 threads, median of 3 runs each.
# Knobs: TRAINING_EPOCHS=5 TRAINING_REPEATS=3 TRAINING_THREADS=1,2; SKIP_TRAINING=1 skips it.
if [ "${SKIP_TRAINING:-0}" != 1 ] && [ -x "$BUILD/bench/training_bench" ]; then
  TRAINING_DATA="$BUILD/test-models"
  if [ ! -s "$TRAINING_DATA/fashion_train_features.npy" ]; then
    TRAINING_DATA="$RESULTS/training/data"
    /usr/bin/python3 "$(dirname "$0")/../tests/models/make_datasets.py" "$TRAINING_DATA"
  fi
fi
if [ "${SKIP_TRAINING:-0}" != 1 ] && [ -x "$BUILD/bench/training_bench" ] &&
   [ ! -s "$TRAINING_DATA/fashion_train_features.npy" ]; then
  say ""
  say "## Training: skipped (no Fashion-MNIST: apt-get install dataset-fashion-mnist)"
elif [ "${SKIP_TRAINING:-0}" != 1 ] && [ -x "$BUILD/bench/training_bench" ]; then
  echo "bench: training (bare libtorch, deviceops-trainer, PyTorch)" >&2
  say ""
  say "## Training: samples/s, bare libtorch loop vs deviceops-trainer vs PyTorch (Python)"
  say ""
  "$BUILD/bench/training_bench" --data "$TRAINING_DATA" --work "$RESULTS/training" \
    --epochs "${TRAINING_EPOCHS:-5}" --repeats "${TRAINING_REPEATS:-3}" \
    --threads "${TRAINING_THREADS:-1,2}" | tee -a "$RESULTS/summary.md"
fi

# 7. Generation (issue 13): a whole txt2img job through GenerationService vs the same ONNX Runtime
# calls made directly (paired, alternating order), tiled vs untiled VAE decode (time and peak RSS,
# one child process each) and CLIP tokenizer throughput, on the bench-size SDXL suite.
# Knobs: GENERATION_PAIRS=10 GENERATION_DECODE_REPEATS=5; SKIP_GENERATION=1 skips it.
if [ "${SKIP_GENERATION:-0}" != 1 ] && [ -x "$BUILD/bench/generation_bench" ]; then
  cmake --build "$BUILD" --target deviceops_bench_models >&2
  echo "bench: generation (about 1.5 minutes; 2.2 GiB peak for the untiled 1024px decode)" >&2
  mkdir -p "$RESULTS/generation"
  "$BUILD/bench/generation_bench" --models "$BUILD/test-models" \
    --pairs "${GENERATION_PAIRS:-10}" --decode-repeats "${GENERATION_DECODE_REPEATS:-5}" \
    --benchmark_out="$RESULTS/generation/gbench.json" --benchmark_out_format=json \
    >"$RESULTS/generation/gbench.txt" 2>&1
  python3 - "$RESULTS/generation/gbench.json" "$BUILD/test-models/sdxl-bench/bench.json" <<'PY' | tee -a "$SUMMARY"
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
sizes = json.load(open(sys.argv[2]))
def find(prefix):
    return [b for b in runs if b["name"].startswith(prefix)]
def failed(b):
    return b.get("error_occurred") and f"skipped: {b.get('error_message', '')}"
print()
print("## Generation: a whole job vs the same ONNX Runtime calls made directly")
print()
for b in find("BM_GenerationVsDirectOrt"):
    if failed(b):
        print(failed(b)); continue
    roles = ["text_encoder", "text_encoder_2", "unet", "vae_decoder"]
    print(f"256x256, 20 Euler steps, guidance 5 (UNet batch 2), a negative prompt, refiner never, "
          f"PNG, preview every 5 steps; bench suite UNet {sizes['unet']['parameters'] / 1e6:.1f} M "
          f"parameters ({sizes['unet']['channels']} channels), VAE decoder widths "
          f"{sizes['vaeDecoder']['widths']}. Median of {b['iterations']} pairs (order alternating). "
          "`direct`: one Ort::Session per model file, the registry's default options, te x2, "
          "te2 x2, unet x20, vae x1 on preallocated inputs; `job`: GenerationService.submit to the "
          "end of its event stream. Role columns: direct = mean per generation, job = the job "
          "report's modelSeconds (registry.infer, median).")
    print()
    print("| path | wall ms | process CPU ms | " + " | ".join(f"{r} ms" for r in roles) +
          " | outside models ms |")
    print("|---|---:|---:|" + "---:|" * len(roles) + "---:|")
    print(f"| direct ONNX Runtime | {b['direct_ms']:.1f} | {b['direct_cpu_ms']:.1f} | " +
          " | ".join(f"{b.get(f'direct_{r}_ms', 0):.1f}" for r in roles) +
          " | – |")
    print(f"| GenerationService job | {b['full_ms']:.1f} | {b['full_cpu_ms']:.1f} | " +
          " | ".join(f"{b.get(f'job_{r}_ms', 0):.1f}" for r in roles) +
          f" | {b['job_pipeline_ms']:.1f} in the pipeline (pipelineSeconds) + "
          f"{b['full_ms'] - b['job_total_ms']:.1f} in the service |")
    print()
    print(f"**direct / job: wall {b['ratio']:.3f} (median of paired ratios "
          f"{b['paired_ratio']:.3f}), CPU {b['cpu_ratio']:.3f}** (target >= 0.95).")
print()
print("## Generation: VAE decode untiled vs tiled (tile = 1/4 of the latent's area, overlap 0.25)")
print()
print("One fresh process per row (inference::Session with the registry's options + "
      "imaging::tiledDecode); `peak RSS` = VmHWM after the decodes - VmRSS before them, the "
      "high-water mark reset after the session was opened and warmed up.")
print()
print("| image | decode | tiles | median ms | first ms | peak RSS delta MiB | RSS before MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for b in find("BM_VaeDecode"):
    parts = b["name"].split("/")
    if failed(b):
        print(f"| {parts[2]} | {parts[1]} | {failed(b)} | | | | |"); continue
    reset = "" if b.get("hwm_reset") else " (HWM not reset)"
    print(f"| {parts[2]} | {parts[1]} | {b['tiles']:.0f} | {b['median_ms']:.1f} | "
          f"{b['first_ms']:.1f} | {b['peak_delta_MiB']:.1f}{reset} | {b['rss_before_MiB']:.1f} |")
print()
print("## Generation: CLIP tokenizer throughput (toy vocabulary of the test suites)")
print()
print("| prompts/s | BPE tokens per prompt | vocabulary |")
print("|---:|---:|---:|")
for b in find("BM_TokenizerEncode"):
    if failed(b):
        print(f"| {failed(b)} | | |"); continue
    print(f"| {b['items_per_second']:,.0f} | {b['tokens_per_prompt']:.1f} | {b['vocabulary']:.0f} |")
print()
PY
fi

say "- Load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say "- Raw outputs: $RESULTS"
