#!/usr/bin/env bash
# scripts/setup.sh's package step, with apt-get replaced by a recording stand-in on PATH:
#   1. everything installed: no apt-get at all (a second run is a no-op);
#   2. a package missing and the registry unreachable (apt-get fails): exit non-zero, naming it.
# Runs only as root (through sudo, PATH would not reach the stand-in): exit 77 = skipped.
#   tests/setup_test.sh SOURCE_DIR
set -euo pipefail
source_dir="$1"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
cat >"$work/bin/apt-get" <<STANDIN
#!/bin/sh
echo "apt-get \$*" >>"$work/apt-calls"
echo "E: Failed to fetch: Temporary failure resolving the registry" >&2
exit 100
STANDIN
chmod +x "$work/bin/apt-get"

echo "coreutils  # installed everywhere" >"$work/installed.txt"
SETUP_PACKAGE_LISTS="$work/installed.txt" PATH="$work/bin:$PATH" \
  "$source_dir/scripts/setup.sh" --packages-only >"$work/out1.txt" 2>&1
if [ -e "$work/apt-calls" ]; then
  echo "FAIL: apt-get ran although nothing was missing:" >&2
  cat "$work/apt-calls" "$work/out1.txt" >&2
  exit 1
fi

printf 'coreutils\ndeviceops-no-such-package  # missing\n' >"$work/missing.txt"
status=0
SETUP_PACKAGE_LISTS="$work/missing.txt" PATH="$work/bin:$PATH" \
  "$source_dir/scripts/setup.sh" --packages-only >"$work/out2.txt" 2>&1 || status=$?
cat "$work/out2.txt"
if [ "$status" -eq 0 ]; then
  echo "FAIL: setup.sh exited 0 although apt-get failed" >&2
  exit 1
fi
if ! grep -q "could not install: deviceops-no-such-package" "$work/out2.txt"; then
  echo "FAIL: setup.sh did not name the package it could not install" >&2
  exit 1
fi
if grep -q "coreutils" "$work/apt-calls"; then
  echo "FAIL: setup.sh asked apt-get for a package that was installed" >&2
  exit 1
fi
echo "PASS: no apt-get when nothing is missing; a failed install names the package"
