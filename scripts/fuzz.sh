#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang-14 and runs each one for a while.
#   scripts/fuzz.sh [build-dir] [seconds-per-fuzzer]      (defaults: build-fuzz 20)
# Up to FUZZ_JOBS (default: the number of cores) fuzzers run at once, one core each, so every
# fuzzer gets its seconds of a whole core. Exits non-zero when a harness does not build or any
# fuzzer finds a crash, a sanitizer report, a leak, a timeout or an out-of-memory input; the
# input is saved under <build-dir>/artifacts/ and the log tail is printed. Reproduce with
#   <build-dir>/fuzz/<name>_fuzzer <build-dir>/artifacts/<file>
# The corpus each fuzzer grows is kept in <build-dir>/corpus/<name>/ between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${1:-build-fuzz}"
SECONDS_PER_FUZZER="${2:-20}"
JOBS="${FUZZ_JOBS:-$(nproc)}"

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  CC="${FUZZ_CC:-clang-14}" CXX="${FUZZ_CXX:-clang++-14}" cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVICEOPS_FUZZ=ON -DDEVICEOPS_TESTS=OFF \
    -DDEVICEOPS_BENCH=OFF -DDEVICEOPS_WERROR=ON
fi
cmake --build "$BUILD_DIR" --target fuzzers

# Seed inputs per fuzzer.
seed_dirs() {
  case "$1" in
    procfs_fuzzer) echo src/devices/cpu/testdata ;;
    amdgpu_sysfs_fuzzer) echo src/devices/amd/testdata ;;
    http_request_fuzzer) echo fuzz/corpus/http_request ;;
    json_body_fuzzer) echo fuzz/corpus/json_body ;;
    kserve_fuzzer) echo fuzz/corpus/kserve ;;
    safetensors_fuzzer) echo fuzz/corpus/safetensors ;;
    clip_vocab_fuzzer) echo fuzz/corpus/clip_vocab ;;
    csv_dataset_fuzzer) echo fuzz/corpus/csv_dataset ;;
    torch_zip_fuzzer) echo fuzz/corpus/torch_zip ;;
    torch_pickle_fuzzer) echo fuzz/corpus/torch_pickle ;;
  esac
}

# Copies the regular files of the seed folders flat into <build-dir>/seeds/<name>/ (testdata
# holds a symlink to a folder, which libFuzzer would try to read as an input).
prepare_seeds() {
  local name="$1" seeds="$BUILD_DIR/seeds/$1" dir file
  rm -rf "$seeds"
  mkdir -p "$seeds"
  for dir in $(seed_dirs "$name"); do
    find "$dir" -type f -print0 | while IFS= read -r -d '' file; do
      cp "$file" "$seeds/$(echo "${file#"$dir"/}" | tr '/' '_')"
    done
  done
}

# Runs one fuzzer; its output goes to <build-dir>/<name>.log, its exit status to <name>.rc.
run_fuzzer() {
  local name="$1" status=0
  "$BUILD_DIR/fuzz/$name" -max_total_time="$SECONDS_PER_FUZZER" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$name-" \
    "$BUILD_DIR/corpus/$name" "$BUILD_DIR/seeds/$name" >"$BUILD_DIR/$name.log" 2>&1 || status=$?
  echo "$status" >"$BUILD_DIR/$name.rc"
}

mkdir -p "$BUILD_DIR/artifacts"
names=()
for harness in fuzz/*_fuzzer.cc; do
  name="$(basename "$harness" .cc)"
  names+=("$name")
  prepare_seeds "$name"
  mkdir -p "$BUILD_DIR/corpus/$name"
  rm -f "$BUILD_DIR/$name.rc"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  echo "fuzz: $name for ${SECONDS_PER_FUZZER}s"
  run_fuzzer "$name" &
done
wait

failed=()
for name in "${names[@]}"; do
  log="$BUILD_DIR/$name.log"
  if [ "$(cat "$BUILD_DIR/$name.rc" 2>/dev/null || echo missing)" = 0 ]; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" |
      sed "s/^/fuzz: $name: /" || true
  else
    echo "fuzz: $name FAILED; end of $log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}; inputs in $BUILD_DIR/artifacts/" >&2
  exit 1
fi
echo "fuzz: ${#names[@]} fuzzers ran ${SECONDS_PER_FUZZER}s each without findings"
