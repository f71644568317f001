#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang-14 and runs each one for a while.
#   scripts/fuzz.sh [build-dir] [seconds-per-fuzzer]      (defaults: build-fuzz 20)
# Exits non-zero when a harness does not build or any fuzzer finds a crash, a leak, a sanitizer
# report, a timeout or an out-of-memory input; the reproducer is written to
# <build-dir>/artifacts/ and named in the output. Reproduce with
#   <build-dir>/fuzz/<name>_fuzzer <build-dir>/artifacts/<file>
# The corpus each fuzzer grows is kept in <build-dir>/corpus/<name>/ between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${1:-build-fuzz}"
SECONDS_PER_FUZZER="${2:-20}"
CC_BIN="${FUZZ_CC:-clang-14}"
CXX_BIN="${FUZZ_CXX:-clang++-14}"

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  CC="$CC_BIN" CXX="$CXX_BIN" cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVICEOPS_FUZZ=ON -DDEVICEOPS_TESTS=OFF \
    -DDEVICEOPS_BENCH=OFF -DDEVICEOPS_WERROR=ON
fi
cmake --build "$BUILD_DIR" --target fuzzers

# Seed files per fuzzer name (regular files only: testdata holds a symlink to a directory).
seed_dirs() {
  case "$1" in
    procfs_fuzzer) echo src/devices/cpu/testdata ;;
    amdgpu_sysfs_fuzzer) echo src/devices/amd/testdata ;;
    http_request_fuzzer) echo fuzz/corpus/http_request ;;
    json_body_fuzzer) echo fuzz/corpus/json_body ;;
  esac
}

mkdir -p "$BUILD_DIR/artifacts"
failed=()
for harness in fuzz/*_fuzzer.cc; do
  name="$(basename "$harness" .cc)"
  binary="$BUILD_DIR/fuzz/$name"
  corpus="$BUILD_DIR/corpus/$name"
  seeds="$BUILD_DIR/seeds/$name"
  rm -rf "$seeds"
  mkdir -p "$corpus" "$seeds"
  for dir in $(seed_dirs "$name"); do
    find "$dir" -type f -print0 | while IFS= read -r -d '' file; do
      cp "$file" "$seeds/$(echo "${file#"$dir"/}" | tr '/' '_')"
    done
  done

  echo "fuzz: $name for ${SECONDS_PER_FUZZER}s"
  log="$BUILD_DIR/$name.log"
  if "$binary" -max_total_time="$SECONDS_PER_FUZZER" -max_len=65536 -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$BUILD_DIR/artifacts/$name-" "$corpus" "$seeds" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" |
      sed "s/^/fuzz: $name: /" || true
  else
    echo "fuzz: $name FAILED; log $log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}; reproducers in $BUILD_DIR/artifacts/" >&2
  exit 1
fi
echo "fuzz: all fuzzers ran ${SECONDS_PER_FUZZER}s without findings"
