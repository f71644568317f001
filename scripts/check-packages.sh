#!/usr/bin/env bash
# The package guard (run by `make test`): fails, naming the file and the package, when the build,
# the tests, the scripts or the fuzzers use a system file whose Debian package scripts/setup.sh
# does not install by name or through the dependencies of what it names.
#   scripts/check-packages.sh [--packages FILE]... [--no-daemon] BUILD_DIR...
# See scripts/check_packages.py for what is collected and how it is judged.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/check_packages.py" "$@"
