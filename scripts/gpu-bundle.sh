#!/usr/bin/env bash
# Packs what the GPU check (scripts/gpu-check.sh) needs on a GPU machine that has no package
# registry: the daemon and the shared libraries it needs that a stock Ubuntu + CUDA image lacks,
# the header-only dependencies of the trainer (built there against the installed PyTorch, see
# scripts/gpu-trainer/CMakeLists.txt), the test CNN and Fashion-MNIST.
#
#   scripts/gpu-bundle.sh BUILD_DIR [OUT_DIR]     OUT_DIR defaults to gpu-bundle/ (git-ignored)
#
# OUT_DIR gets bundle.tar.xz and MANIFEST.txt. The archive holds:
#   bin/deviceopsd              stripped
#   lib/                        its shared libraries beyond glibc, libstdc++, libgcc_s and zlib
#   lib-glibc/                  those four families too, used only where the machine's glibc or
#                               libstdc++ is older than the build machine's (through lib-glibc's
#                               own loader)
#   include/nlohmann, include/fmt   headers for the trainer build (fmt used header-only)
#   models/cnn.onnx             the inference test model (when BUILD_DIR/test-models has it)
#   data/fashion_images_u8.npy, data/fashion_labels.npy
#                               the training tests' Fashion-MNIST (first 12000 training images) as
#                               bytes; gpu-check.sh divides by 255 in float32, which gives back the
#                               tests' fashion_train_features.npy bit for bit
# The device tool carries at most 64 MiB with the working tree: the script fails above that.
set -euo pipefail

die() { echo "gpu-bundle: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: scripts/gpu-bundle.sh BUILD_DIR [OUT_DIR]"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "$1" && pwd)" || die "no build directory $1"
OUT="${2:-$ROOT/gpu-bundle}"
DAEMON="$BUILD/src/deviceopsd"
MODELS="$BUILD/test-models"
PY=/usr/bin/python3
LIMIT=$((64 * 1024 * 1024))
[ -x "$DAEMON" ] || die "$DAEMON is missing: build the deviceopsd target first"
command -v xz >/dev/null || die "xz is missing (apt-get install xz-utils)"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/lib-glibc" "$STAGE/include" "$STAGE/models" \
  "$STAGE/data"

cp "$DAEMON" "$STAGE/bin/deviceopsd"
strip --strip-unneeded "$STAGE/bin/deviceopsd"

# Shared libraries, by the names the loader asks for. Unresolved ones stop the script.
if ldd "$DAEMON" | grep -q 'not found'; then
  ldd "$DAEMON" | grep 'not found' >&2
  die "deviceopsd has unresolved libraries here"
fi
while read -r name path; do
  case "$name" in
    linux-vdso.so.* | libc.so.* | libm.so.* | libdl.so.* | librt.so.* | libpthread.so.* | \
      libresolv.so.* | libstdc++.so.* | libgcc_s.so.* | libz.so.*)
      cp -L "$path" "$STAGE/lib-glibc/$name" ;;
    ld-linux-x86-64.so.*) cp -L "$path" "$STAGE/lib-glibc/ld-linux-x86-64.so.2" ;;
    *) cp -L "$path" "$STAGE/lib/$name" ;;
  esac
done < <(ldd "$DAEMON" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\/.*ld-linux/ {print "ld-linux-x86-64.so.2", $1}')
[ -e "$STAGE/lib/libonnxruntime.so.1" ] || die "libonnxruntime.so.1 was not among ldd's answers"
chmod 0755 "$STAGE"/lib/* "$STAGE"/lib-glibc/*
strip --strip-unneeded "$STAGE"/lib/* 2>/dev/null || true

# Headers the trainer's sources include besides libtorch's (src/common, src/tensor,
# src/training_formats, src/trainer): nlohmann/json and fmt.
for header in nlohmann fmt; do
  [ -d "/usr/include/$header" ] || die "/usr/include/$header is missing (scripts/setup.sh installs it)"
  cp -r "/usr/include/$header" "$STAGE/include/"
done

if [ -f "$MODELS/cnn.onnx" ]; then cp "$MODELS/cnn.onnx" "$STAGE/models/"; fi

# Fashion-MNIST: the tests' npy pair when the build made it, else Debian's IDX files.
"$PY" - "$MODELS" /usr/share/datasets/fashion-mnist "$STAGE/data" <<'PY'
import gzip, os, sys
import numpy as np
models, source, out = sys.argv[1:4]
features = os.path.join(models, "fashion_train_features.npy")
if os.path.exists(features):
    x = np.load(features)
    images = np.rint(x * 255).astype(np.uint8)
    labels = np.load(os.path.join(models, "fashion_train_labels.npy"))
    if not np.array_equal(images.astype(np.float32) / 255, x):
        sys.exit("gpu-bundle: the features are not bytes / 255")
    origin = features
elif os.path.isdir(source):
    def idx(name):
        with gzip.open(os.path.join(source, name), "rb") as f:
            data = f.read()
        dims = data[3]
        shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    images = idx("train-images-idx3-ubyte.gz").reshape(-1, 784)[:12000]
    labels = idx("train-labels-idx1-ubyte.gz").astype(np.int64)[:12000]
    origin = source
else:
    print("gpu-bundle: no Fashion-MNIST (dataset-fashion-mnist); gpu-check.sh will say so")
    sys.exit(0)
np.save(os.path.join(out, "fashion_images_u8.npy"), np.ascontiguousarray(images))
np.save(os.path.join(out, "fashion_labels.npy"), labels.astype(np.int64))
print(f"gpu-bundle: Fashion-MNIST {images.shape[0]} images from {origin}")
PY

mkdir -p "$OUT"
rm -f "$OUT/bundle.tar.xz" "$OUT/MANIFEST.txt"
XZ_OPT="-9 -T1" tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -cJf "$OUT/bundle.tar.xz" .

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
  echo "deviceops GPU bundle: made $(date -u +%Y-%m-%dT%H:%M:%SZ) from $BUILD (checkout $commit)"
  echo "deviceopsd: $("$DAEMON" --version 2>&1 | head -1)"
  echo "glibc of the build machine: $(getconf GNU_LIBC_VERSION)"
  echo "bundle.tar.xz sha256 $(sha256sum "$OUT/bundle.tar.xz" | cut -d' ' -f1)"
  echo "bytes unpacked, file (header trees summed):"
  (cd "$STAGE" && find . -type f -not -path './include/*' -printf '%s %p\n' | sort -k2 &&
    for tree in include/*; do echo "$(du -sb "$tree" | cut -f1) ./$tree/ ($(find "$tree" -type f | wc -l) files)"; done) |
    while read -r size file; do printf '%10d %s\n' "$size" "$file"; done
} > "$OUT/MANIFEST.txt"

bundle=$(du -sb "$OUT" | cut -f1)
unpacked=$(du -sb "$STAGE" | cut -f1)
tree=$(cd "$ROOT" && { git ls-files -z; git ls-files -z --others --exclude-standard; } |
  du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
awk -v out="$OUT" -v b="$bundle" -v u="$unpacked" -v t="$tree" 'BEGIN {
  m = 1048576
  printf "gpu-bundle: %s %.1f MiB (%.1f MiB unpacked) + working tree %.1f MiB = %.1f MiB of 64\n",
    out, b / m, u / m, t / m, (b + t) / m }' 
[ $((bundle + tree)) -le $LIMIT ] || die "over the device tool's 64 MiB"
