#!/usr/bin/env bash
# Sets up everything the tests need and runs all of them, browser tests included:
#   bash tests/run_all.sh [pytest arguments]
# Creates .venv (reused when present), installs the pinned packages, installs Debian's Chromium
# when it is missing (Playwright's own browser download is not used), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt -r requirements-ray.txt

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: run 'sudo apt-get install chromium' (Debian/Ubuntu) for the browser tests." >&2
    exit 1
  fi
fi

export TF_CPP_MIN_LOG_LEVEL=2
# pytest.ini names tests/ as the test path; arguments (files, -m, -k) narrow it.
exec .venv/bin/python -m pytest "$@"
