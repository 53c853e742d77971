#!/usr/bin/env bash
# The CORS tests drive a real browser. Debian's Chromium is the one a locked-down machine can install
# (a test tool's own browser download is refused there), so the test command installs it when missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser CORS tests…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "The browser CORS tests need Chromium: install Debian's 'chromium' package (sudo apt-get install chromium)." >&2
exit 1
