#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests.
# In CI (CI=true) a missing browser is an error; elsewhere the tests skip with a reason.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Chromium from Debian's packages for the browser tests…"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; then
    exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "Chromium is required in CI and could not be installed." >&2
  exit 1
fi
echo "Chromium is not installed (needs root and apt-get): browser tests will be skipped."
