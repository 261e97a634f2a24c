#!/usr/bin/env bash
# The main job: set up .venv if needed, then reproduce a claim's ablation table on CPU with
# W&B offline. Usage: bash scripts/reproduce.sh [CLAIM] [extra harness-claim overrides...]
#   bash scripts/reproduce.sh small_batch                  # 6-11 min on 2 idle cores (measured)
#   bash scripts/reproduce.sh small_batch claim.scale=small  # under 2 min
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
claim="${1:-small_batch}"
shift || true
harness-claim "claim=${claim}" "$@"
