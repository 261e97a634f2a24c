#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the default test suite (slow tests are
# marked and skipped; run them with: bash scripts/test.sh -m slow).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m pytest -q "$@"
