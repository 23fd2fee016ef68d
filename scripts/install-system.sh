#!/bin/sh
# Install the Debian packages the test suite runs for real: Chromium and its WebDriver (the
# headless browser tests, tests/test_report_browser.py) and bubblewrap (the sandbox that runs
# code candidates for verify:python-tests). Idempotent and quiet: does nothing when all are
# present, prints apt's output only when the install fails.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && command -v bwrap >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver bubblewrap; } \
        >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system.sh: could not install chromium, chromium-driver and bubblewrap" >&2
    exit 1
fi
