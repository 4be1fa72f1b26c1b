#!/usr/bin/env bash
# Install everything (once), lint with ruff and run the whole test suite: `bash scripts/test.sh [pytest args]`.
# Fast subset (no browser, no load balancer, no training processes): `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
# The browser tests drive Debian's Chromium through Playwright (never `playwright install`); the
# balancer test puts Debian's HAProxy in front of two replicas.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian's ${missing[*]} for the browser and balancer tests..." >&2
    (apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }) \
      || echo "warning: could not install ${missing[*]}; the tests that need them will be skipped" >&2
  else
    echo "warning: ${missing[*]} absent and this is not root; the tests that need them will be skipped" >&2
  fi
fi
# ruff first (a second): a finding stops the run with ruff's own message. Rules: pyproject.toml.
ruff check --quiet . || { echo "ruff: fix the findings above (rules in pyproject.toml, [tool.ruff.lint])" >&2; exit 1; }
exec python -m pytest "$@"
