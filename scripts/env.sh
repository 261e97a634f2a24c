#!/usr/bin/env bash
# Activate the environment the project runs in, installing the project into it (editable,
# with its test extra) the first time. Sourced by the other scripts. Which environment:
#   HARNESS_VENV=<folder>  that venv or conda env (a venv is created there if the folder is absent)
#   else an active venv ($VIRTUAL_ENV) or conda env ($CONDA_PREFIX; not conda's base env)
#   else .venv in the repo, created once.
# With CI=true the install uses constraints.txt (the versions the project was tested with).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The environment to use, and whether this script may create it.
CREATE=no
if [ -n "${HARNESS_VENV:-}" ]; then
  VENV="$HARNESS_VENV"; [ -e "$VENV" ] || CREATE=yes
elif [ -n "${VIRTUAL_ENV:-}" ]; then
  VENV="$VIRTUAL_ENV"
elif [ -n "${CONDA_PREFIX:-}" ] && [ "${CONDA_DEFAULT_ENV:-}" != "base" ]; then
  VENV="$CONDA_PREFIX"
else
  if [ -n "${CONDA_PREFIX:-}" ]; then
    echo "env.sh: not installing into conda's base environment; using $ROOT/.venv (activate another env or set HARNESS_VENV to use it)" >&2
  fi
  VENV="$ROOT/.venv"; [ -x "$VENV/bin/python" ] || CREATE=yes
fi

if [ "$CREATE" = yes ]; then
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
if [ ! -x "$VENV/bin/python" ]; then
  echo "env.sh: $VENV has no bin/python: point HARNESS_VENV at a venv or conda env (or unset it)" >&2
  return 2 2>/dev/null || exit 2
fi
# A conda env has no bin/activate of its own (conda-meta/ marks one): its bin/ on PATH is
# what activating it does for this project's commands.
if [ -f "$VENV/bin/activate" ] && [ ! -d "$VENV/conda-meta" ]; then
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
else
  export PATH="$VENV/bin:$PATH"
fi

# The stamp names the checkout installed: an environment shared by two checkouts is
# reinstalled from the one in use.
STAMP="$VENV/.harness-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$(cat "$STAMP")" != "$ROOT" ]; then
  CONSTRAINTS=()
  if [ "${CI:-}" = true ]; then CONSTRAINTS=(-c "$ROOT/constraints.txt"); fi
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet "${CONSTRAINTS[@]}" -e "$ROOT[dev]"
  # W&B's sweep-config schema lives in the `sweeps` package, which pins numpy<2 although it
  # works with numpy 2 (tests/test_sweep_files.py validates with it): install it alone.
  python -m pip install --quiet --no-deps "sweeps==0.3.0"
  echo "$ROOT" > "$STAMP"
fi
export WANDB_MODE="${WANDB_MODE:-offline}"
export WANDB_SILENT=true
cd "$ROOT"
