#!/usr/bin/env bash
# Create (once) and activate the project's virtual environment in .venv, with the project
# installed in editable mode plus its test extra. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HARNESS_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  # Once here, `python3 -m venv` failed in ensurepip for no reason it printed and worked on the
  # next try: a folder this script created gets one more try (never --clear a folder it did
  # not create: HARNESS_VENV may point anywhere).
  if [ -e "$VENV" ]; then
    python3 -m venv "$VENV"
  else
    python3 -m venv "$VENV" || { echo "env.sh: creating $VENV failed; trying once more" >&2
                                 python3 -m venv --clear "$VENV"; }
  fi
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.harness-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e "$ROOT[dev]"
  # W&B's sweep-config schema lives in the `sweeps` package, which pins numpy<2 although it
  # works with numpy 2 (tests/test_sweep_files.py validates with it): install it alone.
  python -m pip install --quiet --no-deps "sweeps==0.3.0"
  touch "$STAMP"
fi
export WANDB_MODE="${WANDB_MODE:-offline}"
export WANDB_SILENT=true
cd "$ROOT"
