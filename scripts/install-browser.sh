#!/bin/sh
# Install Debian's Chromium and its WebDriver for the headless browser tests
# (tests/test_report_browser.py). Idempotent and quiet: does nothing when both are present,
# prints apt's output only when the install fails.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; } \
        >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-browser.sh: could not install chromium and chromium-driver" >&2
    exit 1
fi
