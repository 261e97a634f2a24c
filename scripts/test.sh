#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the default test suite (slow tests are
# marked and skipped; run them with: bash scripts/test.sh -m slow).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# The layer contract first ([tool.importlinter] in pyproject.toml): a few seconds, no JAX.
lint-imports --no-cache "$ROOT/pyproject.toml"
python -m pytest -q "$@"
