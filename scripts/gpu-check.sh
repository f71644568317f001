#!/usr/bin/env bash
# GPU check (issues 2-6): builds nothing. Runs the already-built daemon on a machine with NVIDIA
# GPUs and compares GET /api/device with nvidia-smi, field by field.
#   scripts/gpu-check.sh [build-dir]        exit 0 = every NVIDIA GPU matches
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
DAEMON="$BUILD/src/deviceopsd"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found"; exit 2; }
nvidia-smi --query-gpu=name,uuid,memory.total,memory.used,temperature.gpu,power.draw \
  --format=csv,noheader,nounits > "$WORK/smi.csv"

start=$(date +%s%N)
"$DAEMON" --listen 127.0.0.1:0 --ready-file "$WORK/ready" --data-dir "$WORK/data" \
  --log-level warn 2> "$WORK/daemon.log" &
PID=$!
for _ in $(seq 1 200); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
[ -s "$WORK/ready" ] || { echo "gpu-check: daemon did not start"; cat "$WORK/daemon.log"; exit 1; }
echo "daemon ready in $(( ($(date +%s%N) - start) / 1000000 )) ms"
curl -sf "http://$(cat "$WORK/ready")/api/device" > "$WORK/devices.json"

set +e
python3 - "$WORK/smi.csv" "$WORK/devices.json" <<'PY'
import csv, json, sys
smi = [[c.strip() for c in row] for row in csv.reader(open(sys.argv[1]))]
api = json.load(open(sys.argv[2]))
backends = {b["name"]: b for b in api["backends"]}
print("nvidia backend:", "available" if backends.get("nvidia", {}).get("available") else
      "UNAVAILABLE: " + backends.get("nvidia", {}).get("reason", "not configured"))
by_uuid = {(d.get("uuid") or ""): d for d in api["devices"]}
failures = 0
print(f"{'field':<22}{'nvidia-smi':>28}{'deviceops':>28}  ok")
for name, uuid, total, used, temp, power in smi:
    u = uuid.lower().removeprefix("gpu-")
    d = by_uuid.get(u)
    if d is None:
        print(f"{uuid}: MISSING from /api/device"); failures += 1; continue
    MiB = 1024 * 1024
    r = d["readings"]
    rows = [
        ("id", "", d["id"], True),
        ("backends", "", ",".join(d["backends"]), "nvidia" in d["backends"]),
        ("name", name, d["name"], name == d["name"]),
        ("uuid", u, d["uuid"], True),
        ("memory.total MiB", total, d["memory"]["totalBytes"] // MiB,
         abs(int(total) - d["memory"]["totalBytes"] // MiB) <= max(1, int(total) // 100)),
        ("memory.used MiB", used, (d["memory"]["usedBytes"] or 0) // MiB,
         abs(int(used) - (d["memory"]["usedBytes"] or 0) // MiB) <= 256),
        ("temperature C", temp, r["temperatureCelsius"],
         r["temperatureCelsius"] is not None and abs(float(temp) - r["temperatureCelsius"]) <= 3),
        ("power W", power, r["powerWatts"],
         power in ("[N/A]", "N/A") or (r["powerWatts"] is not None and
                                       abs(float(power) - r["powerWatts"]) <= max(15, 0.15 * float(power)))),
        ("health", "", d["health"]["status"], True),
    ]
    for field, expected, actual, ok in rows:
        print(f"{field:<22}{str(expected):>28}{str(actual):>28}  {'yes' if ok else 'NO'}")
        failures += 0 if ok else 1
print("RESULT:", "PASS" if failures == 0 and smi else f"FAIL ({failures} mismatches)")
sys.exit(0 if failures == 0 and smi else 1)
PY
discovery=$?
set -e

# Memory (issue 3): 1 GiB on each NVIDIA GPU through the API, with verify; nvidia-smi's
# memory.used before, during and after.
ADDR="$(cat "$WORK/ready")"
memory=0
for id in $(python3 -c 'import json,sys; print(" ".join(d["id"] for d in json.load(open(sys.argv[1]))["devices"] if "nvidia" in d["backends"]))' "$WORK/devices.json"); do
  uuid=$(python3 -c 'import json,sys; print([d["uuid"] for d in json.load(open(sys.argv[1]))["devices"] if d["id"]==sys.argv[2]][0])' "$WORK/devices.json" "$id")
  used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "GPU-$uuid"; }
  before=$(used)
  t0=$(date +%s%N)
  curl -s -X POST "http://$ADDR/api/memory/allocate" -H 'Content-Type: application/json' \
    -d "{\"deviceId\":\"$id\",\"size\":\"1GiB\",\"verify\":true}" > "$WORK/alloc.json"
  t1=$(date +%s%N)
  during=$(used)
  alloc_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$WORK/alloc.json")
  curl -s -X DELETE "http://$ADDR/api/memory/$alloc_id" > /dev/null
  curl -s -X POST "http://$ADDR/api/memory/$id/optimize" > /dev/null
  after=$(used)
  python3 - "$WORK/alloc.json" "$before" "$during" "$after" "$(( (t1 - t0) / 1000000 ))" <<'PY' || memory=1
import json, sys
a = json.load(open(sys.argv[1])); before, during, after, ms = map(int, sys.argv[2:6])
print(f"memory {a.get('deviceId')}: allocate+verify 1 GiB in {ms} ms, allocator={a.get('allocator')}")
print(f"  nvidia-smi memory.used MiB: before {before}, during {during} (+{during - before}), after {after}")
v = a.get("verify") or {}
print(f"  verify: passed={v.get('passed')} errors={v.get('errors')} write={v.get('writeBytesPerSecond', 0)/1e9:.1f} GB/s read={v.get('readBytesPerSecond', 0)/1e9:.1f} GB/s")
ok = a.get("allocator") == "cuda" and during - before >= 1000 and abs(after - before) <= 64 and v.get("passed")
print("  memory check:", "PASS" if ok else "FAIL", "" if ok else json.dumps(a)[:400])
sys.exit(0 if ok else 1)
PY
done
# Inference (issue 4): the CNN on each NVIDIA GPU with the CUDA provider. The ONNX Runtime package
# restored by the build is the CPU one, so the expected answer is a clear refusal naming the
# missing provider library (never a silent CPU run); then the CNN on the CPU, its ledger charge.
# Telemetry (issue 5): the sampled reading of each GPU after two samples vs nvidia-smi.
inference=0
MODELS="$BUILD/test-models"
if [ -f "$MODELS/cnn.onnx" ]; then
  kill "$PID"; wait "$PID" 2>/dev/null || true
  printf '[inference]\nmodelRoots = ["%s"]\n[telemetry]\nintervalSeconds = 1\n' "$(cd "$MODELS" && pwd)" > "$WORK/gpu.toml"
  rm -f "$WORK/ready"
  "$DAEMON" --config "$WORK/gpu.toml" --listen 127.0.0.1:0 --ready-file "$WORK/ready" \
    --data-dir "$WORK/data2" --log-level warn 2> "$WORK/daemon2.log" &
  PID=$!
  for _ in $(seq 1 200); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
  ADDR="$(cat "$WORK/ready")"
  sleep 2.5
  for id in $(python3 -c 'import json,sys; print(" ".join(d["id"] for d in json.load(open(sys.argv[1]))["devices"] if "nvidia" in d["backends"]))' "$WORK/devices.json"); do
    code=$(curl -s -o "$WORK/load-gpu.json" -w '%{http_code}' -X POST "http://$ADDR/api/inference/model/load" \
      -H 'Content-Type: application/json' \
      -d "{\"path\":\"$(cd "$MODELS" && pwd)/cnn.onnx\",\"name\":\"cnn-$id\",\"devices\":[\"$id\"],\"provider\":\"cuda\"}")
    echo "inference cnn on $id with provider cuda: HTTP $code $(head -c 300 "$WORK/load-gpu.json")"
    curl -s "http://$ADDR/api/integration/health/$id" | head -c 600; echo
  done
  code=$(curl -s -o "$WORK/load-cpu.json" -w '%{http_code}' -X POST "http://$ADDR/api/inference/model/load" \
    -H 'Content-Type: application/json' -d "{\"path\":\"$(cd "$MODELS" && pwd)/cnn.onnx\",\"name\":\"cnn\"}")
  echo "inference cnn on cpu: HTTP $code charged $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("chargedBytes"))' "$WORK/load-cpu.json") bytes"
  [ "$code" = 201 ] || inference=1
fi
# Training (issue 6): the same Fashion-MNIST MLP job on each NVIDIA GPU and on the CPU, same seed.
# Debian's libtorch has no CUDA: the expected GPU answer is the trainer's clear refusal ("failed",
# exit code 2, "no CUDA") — with a CUDA libtorch it trains; samples/s and the loss curve of each.
training=0
if [ -f "$MODELS/fashion_train_features.npy" ] && [ -n "${ADDR:-}" ]; then
  for part in features labels; do
    curl -s -o /dev/null -X POST "http://$ADDR/api/training/data/upload?name=fashion&format=npy&part=$part" \
      -H 'Content-Type: application/octet-stream' --data-binary @"$MODELS/fashion_train_$part.npy"
  done
  gpus=$(python3 -c 'import json,sys; print(" ".join(d["id"] for d in json.load(open(sys.argv[1]))["devices"] if "nvidia" in d["backends"]))' "$WORK/devices.json")
  for device in $gpus cpu; do
    job=$(curl -s -X POST "http://$ADDR/api/training/start" -H 'Content-Type: application/json' \
      -d "{\"dataset\":\"fashion\",\"model\":{\"type\":\"mlp\",\"hidden\":[256,128]},\"epochs\":3,\"batchSize\":128,\"seed\":1,\"devices\":[\"$device\"]}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("jobId",""))')
    for _ in $(seq 1 600); do
      state=$(curl -s "http://$ADDR/api/training/$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
      case "$state" in completed|failed|stopped|interrupted) break ;; esac
      sleep 0.5
    done
    curl -s "http://$ADDR/api/training/$job" | python3 -c '
import json, sys
job = json.load(sys.stdin)
print("training on", sys.argv[1], job["state"], job.get("error", ""), job.get("trainerDevices"))
for epoch in job.get("history", []):
    print("  epoch", epoch["epoch"], "loss %.5f" % epoch["loss"], "val_accuracy %.4f" % epoch.get("val_accuracy", 0),
          "samples/s %.0f" % epoch.get("samplesPerSecond", 0))' "$device"
    [ "$device" = cpu ] && [ "$state" != completed ] && training=1
  done
fi
[ "$discovery" -eq 0 ] && [ "$memory" -eq 0 ] && [ "$inference" -eq 0 ] && [ "$training" -eq 0 ]
