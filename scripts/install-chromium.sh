#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser/) when it is missing.
# Playwright drives this binary (executable_path=/usr/bin/chromium); Playwright's own browser
# download cannot be used here, so we never run `playwright install`.
# Exit status: 0 when /usr/bin/chromium is there afterwards, 1 otherwise (the tests then skip
# with a reason that names this script).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get not found; install Chromium at $CHROMIUM by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-chromium: not root and no password-less sudo; cannot install Chromium" >&2
    exit 1
  fi
fi

echo "install-chromium: installing Debian's chromium (one-time, ~1 minute)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null

if [ -x "$CHROMIUM" ]; then
  "$CHROMIUM" --version >&2 || true
  exit 0
fi
echo "install-chromium: apt-get finished but $CHROMIUM is still missing" >&2
exit 1
