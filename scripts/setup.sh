#!/usr/bin/env bash
# Installs what is missing on a fresh Debian 12 machine, then configures and builds deviceops.
#   scripts/setup.sh [build-dir] [extra cmake args...]
# Idempotent: packages already present are not reinstalled, an existing build is updated.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${1:-build}"
shift || true

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libvulkan-dev libvulkan1 mesa-vulkan-drivers vulkan-tools
  python3 python3-yaml curl
  clang-14 libclang-rt-14-dev
  python3-numpy python3-onnx python3-torch libonnx-testdata libonnx-dev
  libtorch-dev dataset-fashion-mnist
  postgresql libpq-dev libpqxx-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# Node.js and npm only when no npm is on PATH (build machines may ship their own).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET SDK (dotnet) is needed to restore ONNX Runtime from NuGet;" >&2
  echo "       install it, or configure with -DONNXRUNTIME_ROOT=<onnxruntime install>" >&2
  exit 1
fi

# Swagger UI assets (web/node_modules, never committed).
if [ ! -f web/node_modules/swagger-ui-dist/index.html ]; then
  echo "setup: npm install (web/)"
  (cd web && npm ci --no-audit --no-fund)
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$BUILD_DIR"
