#!/usr/bin/env bash
# Installs what is missing on a fresh Debian 12 machine, then configures and builds deviceops.
#   scripts/setup.sh [--bench] [--packages-only] [build-dir] [extra cmake args...]
# The packages are named in scripts/packages.txt (and scripts/packages-bench.txt with --bench;
# SETUP_PACKAGE_LISTS="a.txt b.txt" replaces both, for tests). --packages-only stops after apt.
# Idempotent: when nothing is missing no apt-get runs, an existing build is only updated.
# Exits non-zero, naming the packages, when apt-get cannot install what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTS=(scripts/packages.txt)
PACKAGES_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) LISTS+=(scripts/packages-bench.txt) ;;
    --packages-only) PACKAGES_ONLY=1 ;;
    *) break ;;
  esac
  shift
done
if [ -n "${SETUP_PACKAGE_LISTS:-}" ]; then
  read -r -a LISTS <<<"$SETUP_PACKAGE_LISTS"
fi
BUILD_DIR="${1:-build}"
shift || true

# The package names of the lists: comments and blank lines dropped, one name a line.
read_packages() {
  sed -e 's/#.*//' "$@" | tr -s ' \t' '\n' | sed '/^$/d'
}
mapfile -t PACKAGES < <(read_packages "${LISTS[@]}")

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# Debian's npm is its own package; other Node.js builds (NodeSource) bring npm inside nodejs and
# conflict with Debian's npm, so it is asked for only when no npm is on PATH.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if ! as_root apt-get update -q -o APT::Update::Error-Mode=any ||
     ! as_root env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    echo "setup: apt-get could not install: ${missing[*]}" >&2
    echo "       (is a Debian package registry reachable? see the apt-get output above)" >&2
    exit 1
  fi
fi

[ "$PACKAGES_ONLY" = 1 ] && exit 0

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET SDK (dotnet) is needed to restore ONNX Runtime from NuGet;" >&2
  echo "       install it, or configure with -DONNXRUNTIME_ROOT=<onnxruntime install>" >&2
  exit 1
fi

# The web packages (web/node_modules, never committed: Swagger UI, uPlot, esbuild, puppeteer-core),
# pinned by web/package-lock.json; installed again whenever the lock file changes. The dashboard
# bundle (web/dist) is built by the build itself (CMake target deviceops_web).
if [ ! -f web/node_modules/.deviceops-installed ] ||
   ! cmp -s web/package-lock.json web/node_modules/.deviceops-installed; then
  echo "setup: npm ci (web/)"
  (cd web && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.deviceops-installed)
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$BUILD_DIR"
