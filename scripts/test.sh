#!/usr/bin/env bash
# The test command: set up .venv if needed, check the import contract, then run the default
# test suite on every core, up to 4 (pytest-xdist; slow tests are marked and skipped: run them
# with bash scripts/test.sh -m slow -n 0, one at a time, as they time kills and start daemons).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# The layer contract first ([tool.importlinter] in pyproject.toml): a few seconds, no JAX.
# Quiet when kept (one line); the whole report when a contract is broken.
if lint_report=$(lint-imports --no-cache "$ROOT/pyproject.toml" 2>&1); then
  echo "import contract kept: $(grep -m1 -o 'Contracts: .*' <<<"$lint_report")"
else
  echo "$lint_report"; exit 1
fi
python -m pytest -q -n auto --maxprocesses=4 "$@"
