#!/bin/bash
# Test double of deviceops-trainer for JobManager's unit tests (job_manager_test.cc): speaks the
# progress protocol of docs/TRAINING.md on fd 3 and behaves as the job's "name" says. Not a
# trainer: it trains nothing.
#   complete  started, progress, epoch, checkpoint, completed; exit 0
#   crash     started, then SIGKILL to itself
#   error     an error line, exit 2
#   exit1     a log line on stderr, exit 1
#   slow      started, runs until SIGTERM, then checkpoint + stopped; exit 3
#   stubborn  started, ignores SIGTERM (killed after the grace period)
set -u
job=""; rank=0; resume=0
while [ $# -gt 0 ]; do
  case "$1" in
    --job) job="$2"; shift 2 ;;
    --rank) rank="$2"; shift 2 ;;
    --resume) resume=1; shift ;;
    *) shift ;;
  esac
done
dir=$(dirname "$job")
mode=$(sed -n 's/^ *"name": "\([a-z0-9]*\)",*$/\1/p' "$job" | head -1)
emit() { if [ "$rank" = 0 ]; then echo "$1" >&3; fi; }
checkpoint() {
  mkdir -p "$dir/checkpoints"
  local file="$dir/checkpoints/ckpt-$(printf %010d "$1").pt"
  echo "weights at step $1" > "$file"
  sha256sum "$file" | cut -d' ' -f1 > "$file.sha256"
  emit "{\"type\":\"checkpoint\",\"step\":$1,\"epoch\":1,\"file\":\"$file\",\"best\":false}"
}
echo "fake trainer rank $rank mode $mode resume $resume omp ${OMP_WAIT_POLICY:-unset}"
if [ "$resume" = 1 ]; then
  emit "{\"type\":\"started\",\"step\":5,\"totalSteps\":10,\"stepsPerEpoch\":5,\"epochs\":2,\"threads\":1,\"resumedFrom\":\"$dir/checkpoints/ckpt-0000000005.pt\"}"
else
  emit '{"type":"started","step":0,"totalSteps":10,"stepsPerEpoch":5,"epochs":2,"threads":1,"resumedFrom":null}'
fi
case "$mode" in
  complete)
    emit '{"type":"progress","epoch":1,"step":5,"totalSteps":10,"loss":0.5,"samplesPerSecond":100,"elapsedSeconds":0.1}'
    emit '{"type":"epoch","epoch":1,"step":5,"loss":0.5,"accuracy":0.8}'
    checkpoint 5
    emit '{"type":"epoch","epoch":2,"step":10,"loss":0.25,"accuracy":0.9}'
    emit "{\"type\":\"completed\",\"step\":10,\"weights\":\"$dir/model.safetensors\",\"reason\":\"finished all epochs\"}"
    exit 0 ;;
  crash) kill -9 $$ ;;
  error) emit '{"type":"error","message":"dataset does not match the model"}'; exit 2 ;;
  exit1) echo "something broke in rank $rank" >&2; exit 1 ;;
  slow)
    trap 'checkpoint 3; emit "{\"type\":\"stopped\",\"step\":3,\"checkpoint\":\"x\"}"; exit 3' TERM
    emit '{"type":"progress","epoch":1,"step":3,"totalSteps":10,"loss":0.7,"samplesPerSecond":50,"elapsedSeconds":0.1}'
    while true; do sleep 0.05; done ;;
  stubborn)
    trap '' TERM
    while true; do sleep 0.05; done ;;
esac
exit 1
