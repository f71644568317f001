#!/usr/bin/env bash
# The package guard must pass on this build and must be able to fail: with libgloo-dev taken out
# of a copy of scripts/packages.txt it has to name the package and the header that needs it
# (the first command of a fresh machine once failed at exactly that header).
#   tests/package_guard_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir="$1"
build_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$source_dir/scripts/check-packages.sh" "$build_dir"

grep -v '^libgloo-dev' "$source_dir/scripts/packages.txt" | sed 's/\blibgloo-dev\b//' >"$work/packages.txt"
if grep -qw libgloo-dev "$work/packages.txt"; then
  echo "FAIL: could not take libgloo-dev out of the list" >&2
  exit 1
fi
status=0
"$source_dir/scripts/check-packages.sh" --no-daemon --packages "$work/packages.txt" "$build_dir" \
  >"$work/out.txt" 2>&1 || status=$?
cat "$work/out.txt"
if [ "$status" -ne 1 ]; then
  echo "FAIL: without libgloo-dev the guard exited $status, expected 1" >&2
  exit 1
fi
if ! grep -E 'gloo/rendezvous/store\.h.*libgloo-dev' "$work/out.txt" >/dev/null; then
  echo "FAIL: the guard did not name gloo/rendezvous/store.h and libgloo-dev" >&2
  exit 1
fi
echo "PASS: the guard names libgloo-dev and gloo/rendezvous/store.h"
