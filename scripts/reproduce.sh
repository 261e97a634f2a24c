#!/usr/bin/env bash
# The main job: set up .venv if needed, then reproduce a claim's ablation table on CPU with
# W&B offline. Usage: bash scripts/reproduce.sh [CLAIM] [extra harness-claim overrides...]
#   bash scripts/reproduce.sh small_batch                  # 20-35 min on the shared 2-core machine (measured, 2,500 runs)
#   bash scripts/reproduce.sh small_batch claim.scale=small  # about 5 min there (measured under load)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
claim="${1:-small_batch}"
shift || true
harness-claim "claim=${claim}" "$@"
