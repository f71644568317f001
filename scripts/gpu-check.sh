#!/usr/bin/env bash
# GPU check (issues 2-6 and 15): one self-contained run, at most 8 minutes, on a machine with an
# NVIDIA GPU, a CUDA build of PyTorch and no package registry. Everything else travels in the
# checkout: the daemon and its libraries in gpu-bundle/ (scripts/gpu-bundle.sh, made on the build
# machine), the trainer's sources (built here against PyTorch's libtorch with
# scripts/gpu-trainer/CMakeLists.txt).
#
#   scripts/gpu-check.sh [gpu-bundle | BUILD_DIR]      default gpu-bundle
#
# Phases, each with its own time limit inside the budget (GPU_CHECK_BUDGET_S, default 480 s):
#   preflight   nvidia-smi, the bundle, python3's torch; fails fast (exit 2) without a GPU
#   trainer     cmake + build of deviceops-trainer against torch.utils.cmake_prefix_path, in the
#               background while discovery, memory and inference run
#   discovery   GET /api/device vs nvidia-smi, field by field
#   memory      1 GiB on each GPU through the API with verify; nvidia-smi before/during/after
#   inference   the test CNN with provider cuda (the restored ONNX Runtime is the CPU package: a
#               refusal naming the provider library is the expected answer) and on the CPU
#   selftest    POST /api/testing/end-to-end {"level": "standard"} on the GPU; results table
#   benchmark   POST /api/testing/performance-benchmark on the GPU and the CPU, 3 s per test;
#               device-to-device bandwidth as a fraction of the ~3 TB/s an H100 showed here
#   training    Fashion-MNIST MLP (3 epochs, batch 128, seed 1) on the GPU (cuda:0), then the CPU
# Ends with a GPU_VALIDATION_ROW line for docs/GPU_VALIDATION.md. With $OUT set, writes there
# gpu-check.log, gpu-check.json (every phase), runs.json (the self-test and benchmark runs),
# daemon.log and trainer-build.log. Exit 0: every phase passed; 1: one failed; 2: not runnable.
# GPU_CHECK_TRAINER=path: use that deviceops-trainer instead of building one.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT="$(pwd)"
SOURCE="${1:-gpu-bundle}"
BUDGET="${GPU_CHECK_BUDGET_S:-480}"
STARTED=$(date +%s)
DEADLINE=$((STARTED + BUDGET))
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 # phase output reaches the log even when a limit kills the phase
OUTDIR="${OUT:-}"
TEE_PID=""
if [ -n "$OUTDIR" ]; then
  mkdir -p "$OUTDIR"
  exec > >(tee "$OUTDIR/gpu-check.log") 2>&1
  TEE_PID=$!
fi

say() { printf '[%4ds] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
fail_fast() {
  say "gpu-check: $*"
  exit 2
}
# limit N: N seconds, or what is left of the budget less 10 s for the summary.
limit() {
  local rest=$((DEADLINE - $(date +%s) - 10))
  if [ "$rest" -lt "$1" ]; then echo "$rest"; else echo "$1"; fi
}

# --- preflight: no GPU, no run ------------------------------------------------------------------
command -v nvidia-smi >/dev/null ||
  fail_fast "nvidia-smi not found: no NVIDIA GPU here. This check runs on the device tool's GPU machine (docs/GPU_VALIDATION.md)"
GPUS="$(timeout 20 nvidia-smi -L 2>&1)" || fail_fast "nvidia-smi -L failed: $GPUS"
echo "$GPUS" | grep -q '^GPU ' || fail_fast "nvidia-smi lists no GPU: $GPUS"
command -v "$PY" >/dev/null || fail_fast "$PY not found"

WORK="$(mktemp -d /tmp/gpu-check.XXXXXX)"
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
DAEMON_PID=""
BUILD_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
finish() {
  [ -n "$BUILD_PID" ] && kill -- -"$BUILD_PID" 2>/dev/null
  if [ -n "$DAEMON_PID" ]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  if [ -n "$OUTDIR" ]; then
    for f in daemon.log trainer-build.log runs.json gpu-check.json; do
      [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUTDIR/$f"
    done
  fi
  rm -rf "$WORK"
  if [ -n "$TEE_PID" ]; then # tee writes the last lines before the command returns
    exec >&- 2>&-
    wait "$TEE_PID" 2>/dev/null
  fi
}
trap finish EXIT

# record ORDER PHASE STATUS SUMMARY [SHORT]: one phase's result (the Python phases write their
# own); SHORT is its part of the GPU_VALIDATION_ROW line.
record() {
  "$PY" -c 'import json, sys
json.dump({"phase": sys.argv[2], "status": sys.argv[3], "summary": sys.argv[4], "short": sys.argv[5]}, open(sys.argv[1], "w"))' \
    "$RESULTS/$1-$2.json" "$2" "$3" "$4" "${5:-$2 $3}"
  say "== $2: ${3^^}: $4"
}

# try_launch LOADER LIBS: deviceopsd through that dynamic loader with the bundle's libraries (an
# explicit loader, so the trainer processes the daemon starts do not inherit them).
try_launch() {
  version="$("$1" --library-path "$2" "$DAEMON" --version 2>&1)" || return 1
  LAUNCH=("$1" --library-path "$2" "$DAEMON")
  LAUNCHED_BY="$1"
}

if [ -f "$SOURCE/bundle.tar.xz" ]; then
  MODE=bundle
  B="$WORK/bundle"
  mkdir -p "$B"
  if command -v xz >/dev/null; then
    tar -C "$B" -xJf "$SOURCE/bundle.tar.xz" || fail_fast "cannot unpack $SOURCE/bundle.tar.xz"
  else
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$SOURCE/bundle.tar.xz" "$B" || fail_fast "cannot unpack $SOURCE/bundle.tar.xz"
  fi
  DAEMON="$B/bin/deviceopsd"
  HEADERS="$B/include"
  MODELS="$B/models"
  # The host's glibc and libstdc++ first; the bundle's own (lib-glibc/, with its loader) where
  # the host's are older than the build machine's.
  if ! try_launch /lib64/ld-linux-x86-64.so.2 "$B/lib"; then
    say "deviceopsd with the host's glibc: $(echo "$version" | head -3)"
    try_launch "$B/lib-glibc/ld-linux-x86-64.so.2" "$B/lib:$B/lib-glibc" ||
      fail_fast "deviceopsd from the bundle does not start here: $(echo "$version" | head -3)"
  fi
elif [ -x "$SOURCE/src/deviceopsd" ]; then
  MODE=build
  B="$(cd "$SOURCE" && pwd)"
  DAEMON="$B/src/deviceopsd"
  HEADERS=""
  MODELS="$B/test-models"
  LAUNCH=("$DAEMON")
  LAUNCHED_BY="none (build directory)"
  version="$("$DAEMON" --version 2>&1)" || fail_fast "deviceopsd does not start: $version"
else
  fail_fast "$SOURCE is neither a bundle (scripts/gpu-bundle.sh BUILD_DIR) nor a build directory"
fi
echo "$GPUS"
TORCH_INFO="$(timeout "$(limit 90)" "$PY" -c '
import torch
print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.utils.cmake_prefix_path)
' 2>&1 | tail -1)"
read -r TORCH_VERSION TORCH_CUDA TORCH_SEES_GPU TORCH_PREFIX <<<"$TORCH_INFO"
record 1 preflight pass "$(echo "$GPUS" | head -1 | cut -d'(' -f1)| $(echo "$version" | head -1) ($MODE, loader $LAUNCHED_BY) | python3 torch: $TORCH_INFO"

# --- trainer build, in the background -----------------------------------------------------------
TRAINER="$WORK/trainer/deviceops-trainer"
BUILD_STARTED=0
if [ -n "${GPU_CHECK_TRAINER:-}" ]; then # a trainer built before: no build
  TRAINER="$(cd "$(dirname "$GPU_CHECK_TRAINER")" && pwd)/$(basename "$GPU_CHECK_TRAINER")"
  record 2 trainer pass "given: $TRAINER" "trainer given (not built)"
elif [ "${TORCH_SEES_GPU:-}" = True ] && [ -n "${TORCH_PREFIX:-}" ]; then
  nvcc="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
  cuda=""
  [ -n "$nvcc" ] && cuda="-DCMAKE_CUDA_COMPILER=$nvcc -DCUDAToolkit_ROOT=$(dirname "$(dirname "$nvcc")")"
  cat > "$WORK/build-trainer.sh" <<BUILD
set -x
cmake=cmake
command -v cmake >/dev/null ||
  cmake="\$("$PY" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')"
generator="-G Ninja"
if ! command -v ninja >/dev/null; then
  ninja="\$("$PY" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))')" &&
    generator="-G Ninja -DCMAKE_MAKE_PROGRAM=\$ninja" || generator=""
fi
"\$cmake" -S "$ROOT/scripts/gpu-trainer" -B "$WORK/trainer" \$generator $cuda \\
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \\
  -DDEVICEOPS_HEADERS_DIR="$HEADERS" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 &&
  "\$cmake" --build "$WORK/trainer" --target deviceops-trainer -j "$(nproc)"
BUILD
  say "trainer: building against libtorch $TORCH_VERSION (CUDA $TORCH_CUDA) in the background"
  BUILD_STARTED=$(date +%s)
  setsid timeout "$(limit 240)" bash "$WORK/build-trainer.sh" > "$WORK/trainer-build.log" 2>&1 &
  BUILD_PID=$!
else
  echo "python3 torch: $TORCH_INFO" > "$WORK/trainer-build.log"
  record 2 trainer fail "no CUDA PyTorch in $PY ($TORCH_INFO): trainer not built" \
    "trainer not built (no CUDA PyTorch)"
  [ "$MODE" = build ] && TRAINER="$B/src/deviceops-trainer"
fi

# --- the daemon ---------------------------------------------------------------------------------
mkdir -p "$WORK/data" "$MODELS"
cat > "$WORK/gpu.toml" <<EOF
[server]
webRoot = "$ROOT/web"
[inference]
modelRoots = ["$(cd "$MODELS" && pwd)"]
[telemetry]
intervalSeconds = 1
[training]
trainerPath = "$TRAINER"
EOF
"${LAUNCH[@]}" --config "$WORK/gpu.toml" --listen 127.0.0.1:0 --ready-file "$WORK/ready" \
  --data-dir "$WORK/data" --log-level warn > "$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 300); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || {
  cat "$WORK/daemon.log"
  fail_fast "the daemon did not start in 30 s"
}
GPU_CHECK_ADDR="$(cat "$WORK/ready")"
export GPU_CHECK_ADDR GPU_CHECK_RESULTS="$RESULTS" GPU_CHECK_WORK="$WORK"
say "daemon ready at $GPU_CHECK_ADDR"

# The HTTP and JSON side of every phase: python3's standard library (numpy for the dataset).
cat > "$WORK/check.py" <<'PY'
import csv, io, json, os, subprocess, sys, time, urllib.error, urllib.request

ADDR = os.environ["GPU_CHECK_ADDR"]
RESULTS = os.environ["GPU_CHECK_RESULTS"]
WORK = os.environ["GPU_CHECK_WORK"]
H100_D2D = 3.0e12  # B/s read + written, what PyTorch's copy reached on this workplace's H100
FINISHED = ("completed", "failed", "cancelled")  # test runs
JOB_FINISHED = ("completed", "failed", "stopped", "interrupted")  # training jobs


def call(method, path, body=None, raw=None, timeout=60):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://{ADDR}{path}", data=data, method=method)
    request.add_header("Content-Type",
                       "application/octet-stream" if raw is not None else "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except Exception as error:  # refused, reset, timed out
        return 0, {"error": {"message": f"{type(error).__name__}: {error}"}}
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        return status, {"text": text[:300].decode(errors="replace")}


def record(order, phase, status, summary, short=None, **details):
    """Writes one phase's result; `short` is its part of the GPU_VALIDATION_ROW line."""
    with open(f"{RESULTS}/{order}-{phase}.json", "w") as f:
        json.dump({"phase": phase, "status": status, "summary": summary,
                   "short": short or f"{phase} {status}", **details}, f)
    print(f"== {phase}: {status.upper()}: {summary}", flush=True)


def error_text(body):
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("message", "")
    return json.dumps(body)[:300]


def devices():
    status, body = call("GET", "/api/device")
    if status != 200:
        raise SystemExit(f"GET /api/device: HTTP {status} {error_text(body)}")
    return body


def gpu_ids(api):
    return [d["id"] for d in api["devices"] if "nvidia" in d.get("backends", [])]


def cpu_id(api):
    return next((d["id"] for d in api["devices"] if d.get("type") == "cpu"), "cpu0")


def smi(*fields, gpu=None):
    command = ["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"]
    if gpu:
        command += ["-i", gpu]
    out = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(out)) if row]


def discovery():
    rows = smi("name", "uuid", "memory.total", "memory.used", "temperature.gpu", "power.draw")
    api = devices()
    backends = {b["name"]: b for b in api["backends"]}
    nvidia = backends.get("nvidia", {})
    print("nvidia backend:", "available" if nvidia.get("available")
          else "UNAVAILABLE: " + nvidia.get("reason", "not configured"))
    by_uuid = {(d.get("uuid") or ""): d for d in api["devices"]}
    failures, MiB = 0, 1024 * 1024
    print(f"{'field':<22}{'nvidia-smi':>30}{'deviceops':>30}  ok")
    for name, uuid, total, used, temp, power in rows:
        u = uuid.lower().removeprefix("gpu-")
        d = by_uuid.get(u)
        if d is None:
            print(f"{uuid}: MISSING from /api/device")
            failures += 1
            continue
        r = d["readings"]
        mem = d["memory"]
        checks = [
            ("id", "", d["id"], True),
            ("backends", "", ",".join(d["backends"]), "nvidia" in d["backends"]),
            ("name", name, d["name"], name == d["name"]),
            ("uuid", u, d["uuid"], True),
            ("memory.total MiB", total, mem["totalBytes"] // MiB,
             abs(int(total) - mem["totalBytes"] // MiB) <= max(1, int(total) // 100)),
            ("memory.used MiB", used, (mem["usedBytes"] or 0) // MiB,
             abs(int(used) - (mem["usedBytes"] or 0) // MiB) <= 256),
            ("temperature C", temp, r["temperatureCelsius"],
             r["temperatureCelsius"] is not None and abs(float(temp) - r["temperatureCelsius"]) <= 3),
            ("power W", power, r["powerWatts"],
             power in ("[N/A]", "N/A") or (r["powerWatts"] is not None and abs(
                 float(power) - r["powerWatts"]) <= max(15, 0.15 * float(power)))),
            ("health", "", d["health"]["status"], True),
        ]
        for field, expected, actual, ok in checks:
            print(f"{field:<22}{str(expected):>30}{str(actual):>30}  {'yes' if ok else 'NO'}")
            failures += 0 if ok else 1
    ok = failures == 0 and rows
    record(3, "discovery", "pass" if ok else "fail",
           f"{len(rows)} GPU(s) match nvidia-smi" if ok else f"{failures} mismatches",
           short="/api/device = nvidia-smi" if ok else f"/api/device vs nvidia-smi: {failures} mismatches",
           gpus=[{"name": r[0], "uuid": r[1]} for r in rows])


def memory():
    api = devices()
    failures, notes = 0, []
    for d in api["devices"]:
        if "nvidia" not in d.get("backends", []):
            continue
        used = lambda: int(smi("memory.used", gpu="GPU-" + d["uuid"])[0][0])
        before = used()
        t0 = time.monotonic()
        status, a = call("POST", "/api/memory/allocate",
                         {"deviceId": d["id"], "size": "1GiB", "verify": True}, timeout=120)
        ms = (time.monotonic() - t0) * 1000
        during = used()
        call("DELETE", f"/api/memory/{a.get('id', '')}")
        call("POST", f"/api/memory/{d['id']}/optimize")
        after = used()
        v = a.get("verify") or {}
        print(f"memory {d['id']}: allocate+verify 1 GiB in {ms:.0f} ms, HTTP {status}, "
              f"allocator={a.get('allocator')}")
        print(f"  nvidia-smi memory.used MiB: before {before}, during {during} "
              f"(+{during - before}), after {after}")
        print(f"  verify: passed={v.get('passed')} errors={v.get('errors')} "
              f"write={v.get('writeBytesPerSecond', 0) / 1e9:.1f} GB/s "
              f"read={v.get('readBytesPerSecond', 0) / 1e9:.1f} GB/s")
        ok = (a.get("allocator") == "cuda" and during - before >= 1000
              and abs(after - before) <= 64 and v.get("passed"))
        if not ok:
            failures += 1
            print("  FAIL:", json.dumps(a)[:400])
        notes.append(f"{d['id']} +{during - before} MiB, verify {v.get('passed')}")
    record(4, "memory", "pass" if failures == 0 and notes else "fail",
           "; ".join(notes) or "no NVIDIA device in /api/device",
           short="1 GiB allocate+verify " + ("pass" if failures == 0 and notes else "FAIL"))


def inference(models):
    model = os.path.join(models, "cnn.onnx")
    if not os.path.exists(model):
        record(5, "inference", "skip", "no cnn.onnx in the bundle")
        return
    api = devices()
    notes, ok = [], True
    for gpu in gpu_ids(api):
        status, body = call("POST", "/api/inference/model/load",
                            {"path": model, "name": "cnn-" + gpu, "devices": [gpu],
                             "provider": "cuda"}, timeout=120)
        text = error_text(body) if status >= 400 else "loaded"
        print(f"inference cnn on {gpu} with provider cuda: HTTP {status} {text[:300]}")
        # The CPU ONNX Runtime package: a refusal naming the provider library is the answer;
        # a load (a CUDA package restored) is better still.
        expected = status < 300 or "libonnxruntime_providers_cuda" in text
        ok = ok and expected
        notes.append(f"{gpu} cuda: HTTP {status}" + ("" if status < 300 else
                                                      " (provider library missing, as expected)"
                                                      if expected else " UNEXPECTED"))
    status, body = call("POST", "/api/inference/model/load", {"path": model, "name": "cnn"},
                        timeout=120)
    print(f"inference cnn on cpu: HTTP {status} charged {body.get('chargedBytes')} bytes")
    ok = ok and status == 201
    notes.append(f"cpu: HTTP {status}")
    record(5, "inference", "pass" if ok else "fail", "; ".join(notes),
           short="CNN: " + ", ".join(notes))


def figure_text(f):
    text = f"{f['name']}={f['value']:.4g} {f.get('unit', '')}"
    if f.get("ratio") is not None:
        text += f" ({f['ratio']:.2f} of peak)"
    return text


def print_results(run):
    print(f"run {run['id']} {run['kind']} {run.get('level') or ''}: state {run['state']}, "
          f"status {run.get('status')}, summary {run.get('summary')}"
          + (f", error {run['error']}" if run.get("error") else ""))
    print(f"  {'device':<8}{'test':<34}{'status':<7}{'ms':>9}  figures / reason")
    for r in run.get("results", []):
        figures = ", ".join(figure_text(f) for f in r.get("figures", []))
        reason = r.get("reason", "")
        print(f"  {r['deviceId']:<8}{r['test']:<34}{r['status']:<7}{r.get('durationMs', 0):>9.0f}"
              f"  {figures}{' | ' if figures and reason else ''}{reason[:120]}")


def follow(kind, body, limit):
    status, run = call("POST", f"/api/testing/{kind}", body)
    if status != 202:
        return None, f"POST /api/testing/{kind}: HTTP {status} {error_text(run)}"
    deadline, step = time.monotonic() + limit, None
    while run.get("state") not in FINISHED and time.monotonic() < deadline:
        time.sleep(2)
        status, latest = call("GET", f"/api/testing/runs/{run['id']}")
        if status == 200:
            run = latest
        progress = run.get("progress") or {}
        if progress.get("step") != step:
            step = progress.get("step")
            print(f"  {progress.get('fraction', 0):4.0%} {progress.get('deviceId')} {step}",
                  flush=True)
    if run.get("state") not in FINISHED:
        call("POST", f"/api/testing/runs/{run['id']}/cancel")
        time.sleep(2)
        run = call("GET", f"/api/testing/runs/{run['id']}")[1]
        run["timedOut"] = limit
    runs_file = os.path.join(WORK, "runs.json")
    runs = json.load(open(runs_file)) if os.path.exists(runs_file) else []
    json.dump(runs + [run], open(runs_file, "w"), indent=1)
    print_results(run)
    return run, None


def selftest(limit):
    api = devices()
    gpus = gpu_ids(api)
    if not gpus:
        record(6, "selftest", "fail", "no NVIDIA device in /api/device")
        return
    run, problem = follow("end-to-end", {"level": "standard", "devices": [gpus[0]]}, limit)
    if problem:
        record(6, "selftest", "fail", problem)
        return
    summary = run.get("summary") or {}
    timed = f" (cancelled after {limit:.0f} s)" if run.get("timedOut") else ""
    record(6, "selftest", "pass" if run.get("status") in ("pass", "warn") and not timed else "fail",
           f"standard on {gpus[0]}: {run.get('state')}, {run.get('status')}, "
           f"{summary.get('pass', 0)} pass {summary.get('warn', 0)} warn "
           f"{summary.get('fail', 0)} fail {summary.get('skip', 0)} skip{timed}",
           short=f"self-test standard {run.get('status')} ({summary.get('pass', 0)} pass, "
                 f"{summary.get('warn', 0)} warn, {summary.get('fail', 0)} fail, "
                 f"{summary.get('skip', 0)} skip)",
           run=run.get("id"), results=summary)


def benchmark(limit):
    api = devices()
    gpus = gpu_ids(api)
    if not gpus:
        record(7, "benchmark", "fail", "no NVIDIA device in /api/device")
        return
    run, problem = follow("performance-benchmark",
                          {"devices": [gpus[0], cpu_id(api)], "durationSeconds": 3}, limit)
    if problem:
        record(7, "benchmark", "fail", problem)
        return
    d2d = None
    for r in run.get("results", []):
        if r["deviceId"] == gpus[0] and r["test"].endswith("deviceToDevice"):
            d2d = next((f for f in r.get("figures", []) if f.get("unit") == "B/s"), None)
    if d2d:
        # The daemon counts bytes copied (as nvbandwidth does); the memory moved twice that.
        share = 2 * d2d["value"] / H100_D2D
        print(f"deviceToDevice on {gpus[0]}: {d2d['value']:.4g} B/s copied, traffic "
              f"{2 * d2d['value']:.4g} B/s = {share:.2f} of the "
              f"~3 TB/s (bytes read + written) PyTorch's copy reached on an H100 here; "
              f"daemon's peak {d2d.get('peak')}, ratio {d2d.get('ratio')}")
    summary = run.get("summary") or {}
    timed = f" (cancelled after {limit:.0f} s)" if run.get("timedOut") else ""
    ok = run.get("status") in ("pass", "warn") and not timed and d2d is not None
    record(7, "benchmark", "pass" if ok else "fail",
           f"{run.get('state')}{timed}, {run.get('status')}, {summary.get('pass', 0)} pass "
           f"{summary.get('fail', 0)} fail; " +
           (f"deviceToDevice {d2d['value'] / 1e12:.2f} TB/s copied = {share:.2f} of 3 TB/s traffic" if d2d
            else "no deviceToDevice figure for the GPU"),
           short=f"benchmark {run.get('status')}{timed}, " + (
               f"device-to-device {d2d['value'] / 1e12:.2f} TB/s = {share:.2f} x 3 TB/s"
               if d2d else "no device-to-device figure"),
           run=run.get("id"), deviceToDeviceBytesPerSecond=d2d and d2d["value"],
           deviceToDeviceShareOf3TBs=d2d and share)


def dataset(data_dir, models):
    """(features.npy, labels.npy, what they are): Fashion-MNIST from the bundle or the build."""
    import numpy as np
    images = os.path.join(data_dir, "fashion_images_u8.npy")
    features = os.path.join(models, "fashion_train_features.npy")
    x, y = os.path.join(WORK, "features.npy"), os.path.join(WORK, "labels.npy")
    if os.path.exists(images):
        # bytes / 255 in float32: bit for bit the tests' fashion_train_features.npy
        np.save(x, np.load(images).astype(np.float32) / 255)
        np.save(y, np.load(os.path.join(data_dir, "fashion_labels.npy")))
        return x, y, "Fashion-MNIST (first 12000 training images)"
    if os.path.exists(features):
        return features, os.path.join(models, "fashion_train_labels.npy"), \
            "Fashion-MNIST (first 12000 training images)"
    # No Fashion-MNIST: Gaussian blobs like the trainer's unit tests use, at Fashion's shape.
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (10, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 12000)
    np.save(x, (centres[labels] + rng.normal(0, 2, (12000, 784))).astype(np.float32))
    np.save(y, labels.astype(np.int64))
    return x, y, "SYNTHETIC Gaussian blobs, 12000 x 784, 10 classes (no Fashion-MNIST in the bundle)"


def training(data_dir, models, trainer, limit):
    if not os.access(trainer, os.X_OK):
        record(9, "training", "fail", f"no trainer ({trainer}): see trainer-build.log")
        return
    x, y, described = dataset(data_dir, models)
    print("dataset:", described)
    for part, path in (("features", x), ("labels", y)):
        with open(path, "rb") as f:
            status, body = call("POST",
                                f"/api/training/data/upload?name=fashion&format=npy&part={part}",
                                raw=f.read(), timeout=120)
        if status != 201:
            record(9, "training", "fail", f"upload {part}: HTTP {status} {error_text(body)}")
            return
    targets = gpu_ids(devices())[:1] + ["cpu"]
    deadline = time.monotonic() + limit
    jobs = {}
    for index, device in enumerate(targets):
        status, job = call("POST", "/api/training/start", {
            "dataset": "fashion", "model": {"type": "mlp", "hidden": [256, 128]}, "epochs": 3,
            "batchSize": 128, "seed": 1, "devices": [device]})
        if status != 201:
            print(f"training on {device}: HTTP {status} {error_text(job)}")
            jobs[device] = {"state": f"refused (HTTP {status})", "error": error_text(job)}
            continue
        share = (deadline - time.monotonic()) / (len(targets) - index)
        end = time.monotonic() + share
        while job.get("state") not in JOB_FINISHED and time.monotonic() < end:
            time.sleep(1)
            status, latest = call("GET", f"/api/training/{job['jobId']}")
            if status == 200:
                job = latest
        if job.get("state") not in JOB_FINISHED:
            call("POST", f"/api/training/{job['jobId']}/stop")
            job["state"] = f"timed out after {share:.0f} s"
        print(f"training on {device}: {job.get('state')} {job.get('error', '')} "
              f"trainer devices {job.get('trainerDevices')}")
        for epoch in job.get("history") or []:
            print(f"  epoch {epoch.get('epoch')} loss {epoch.get('loss') or 0:.5f} "
                  f"val_accuracy {epoch.get('val_accuracy') or 0:.4f} "
                  f"samples/s {epoch.get('samplesPerSecond') or 0:.0f} "
                  f"seconds {epoch.get('seconds') or 0:.2f}")
        jobs[device] = job

    def line(device):
        job = jobs[device]
        last = (job.get("history") or [{}])[-1]
        if job.get("state") != "completed":
            return f"{device} {job.get('state')}: {str(job.get('error', ''))[:160]}"
        return (f"{device} val_acc {last.get('val_accuracy') or 0:.4f}, "
                f"{last.get('samplesPerSecond') or 0:.0f} samples/s")

    ok = len(jobs) == 2 and all(j.get("state") == "completed" for j in jobs.values())
    record(9, "training", "pass" if ok else "fail",
           f"{described}, MLP 784-256-128-10, 3 epochs: " + "; ".join(line(d) for d in jobs),
           short=("Fashion-MNIST" if "Fashion" in described else "synthetic data") + " MLP: " +
                 "; ".join(line(d) for d in jobs),
           jobs={d: {k: j.get(k) for k in ("jobId", "state", "error", "trainerDevices", "history")}
                 for d, j in jobs.items()})


def summary(out):
    phases = [json.load(open(os.path.join(RESULTS, f))) for f in sorted(os.listdir(RESULTS))]
    gpu = smi("name", "driver_version")
    name = f"{gpu[0][0]} (driver {gpu[0][1]})" if gpu else "no GPU"
    document = {"date": time.strftime("%Y-%m-%d"), "gpu": name, "phases": phases}
    json.dump(document, open(out, "w"), indent=1)
    print("\nphase        status  summary")
    for p in phases:
        print(f"{p['phase']:<13}{p['status']:<8}{p['summary']}")
    failed = [p["phase"] for p in phases if p["status"] == "fail"]
    verdict = "PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"
    row = "; ".join(p.get("short", p["phase"] + " " + p["status"])
                    for p in phases if p["phase"] != "preflight")
    print(f"\nGPU_VALIDATION_ROW | {document['date']} | 15 (scripts/gpu-check.sh) | {name} | "
          f"{verdict}: {row} |")
    return 1 if failed else 0


if __name__ == "__main__":
    phase, args = sys.argv[1], sys.argv[2:]
    if phase == "discovery":
        discovery()
    elif phase == "memory":
        memory()
    elif phase == "inference":
        inference(args[0])
    elif phase == "selftest":
        selftest(float(args[0]))
    elif phase == "benchmark":
        benchmark(float(args[0]))
    elif phase == "training":
        training(args[0], args[1], args[2], float(args[3]))
    elif phase == "summary":
        sys.exit(summary(args[0]))
PY

# run_phase ORDER NAME SECONDS ARGS...: a Python phase under a hard limit; one that died or ran
# out of time without recording itself is recorded as failed.
run_phase() {
  local order=$1 name=$2 seconds=$3
  shift 3
  if [ "$seconds" -lt 25 ]; then
    record "$order" "$name" fail "not run: the budget of $BUDGET s was spent"
    return
  fi
  say "-- $name (limit $seconds s)"
  timeout "$seconds" "$PY" "$WORK/check.py" "$name" "$@"
  local rc=$?
  if [ ! -f "$RESULTS/$order-$name.json" ]; then
    record "$order" "$name" fail "exited $rc without a result (124: its $seconds s ran out)"
  fi
}

run_phase 3 discovery "$(limit 30)"
run_phase 4 memory "$(limit 60)"
run_phase 5 inference "$(limit 60)" "$(cd "$MODELS" && pwd)"

if [ -n "$BUILD_PID" ]; then
  say "-- trainer: waiting for the build"
  wait "$BUILD_PID"
  build_rc=$?
  BUILD_PID=""
  build_s=$(($(date +%s) - BUILD_STARTED))
  tail -25 "$WORK/trainer-build.log"
  if [ "$build_rc" -eq 0 ] && [ -x "$TRAINER" ]; then
    missing="$(ldd "$TRAINER" | grep 'not found' | tr -s ' \t\n' ' ')"
    if [ -z "$missing" ]; then
      record 2 trainer pass "built against libtorch $TORCH_VERSION (CUDA $TORCH_CUDA) in $build_s s" \
        "trainer built against torch $TORCH_VERSION in $build_s s"
    else
      record 2 trainer fail "built in $build_s s, but ldd: $missing"
    fi
  else
    why="exit $build_rc after $build_s s"
    [ "$build_rc" -eq 124 ] && why="timed out after $build_s s"
    first_error="$(grep -m1 -E 'error|Error' "$WORK/trainer-build.log" | cut -c1-300)"
    record 2 trainer fail "build $why: ${first_error:-see trainer-build.log}" \
      "trainer build against torch $TORCH_VERSION failed ($why)"
  fi
fi

# The standard self-test may train on the GPU with the trainer: it runs after the build.
t=$(limit 170)
run_phase 6 selftest "$t" $((t - 20))
t=$(limit 110)
run_phase 7 benchmark "$t" $((t - 20))
t=$(limit 150)
run_phase 9 training "$t" "$B/data" "$MODELS" "$TRAINER" $((t - 20))

"$PY" "$WORK/check.py" summary "$WORK/gpu-check.json"
rc=$?
say "gpu-check: done in $(($(date +%s) - STARTED)) s (budget $BUDGET s)"
exit $rc
