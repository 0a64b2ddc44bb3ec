#!/usr/bin/env bash
# Creates .venv and installs the project with its dev tools; re-running only fills gaps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  [[ $PYTHON == python3 ]] && scripts/need.sh python3 >/dev/null
  # Debian's python3 makes a venv only with python3-venv (ensurepip) installed
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    scripts/need.sh --packages python3-venv
    "$PYTHON" -m venv .venv
  fi
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f "$stamp" ]]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
