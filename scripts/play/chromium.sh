#!/usr/bin/env bash
# Print the path of Debian's chromium, installing the package with apt-get when it is missing.
#
#   scripts/play/chromium.sh          # -> /usr/bin/chromium
#
# The playground's browser test (tests/test_play_browser.py) drives this browser with
# Playwright (executable_path=...), so no browser is downloaded. Exit status 4 means chromium
# is missing and cannot be installed here (not root, no apt-get, apt-get failed): the test
# turns that into a skip with this script's message.
set -euo pipefail

find_chromium() {
  local c
  for c in "${HARNESS_CHROMIUM:-}" chromium chromium-browser; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}
cannot_install() { printf 'chromium: error: %s\n' "$*" >&2; exit 4; }

if path="$(find_chromium)"; then
  echo "$path"
  exit 0
fi
[ "$(id -u)" = 0 ] || cannot_install "chromium is not installed and installing it needs root (apt-get install chromium)"
command -v apt-get >/dev/null || cannot_install "chromium is not installed and there is no apt-get to install it"
LOG="${TMPDIR:-/tmp}/harness-chromium-apt.log"
echo "chromium: installing Debian's chromium with apt-get (log: $LOG)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends chromium >"$LOG" 2>&1; then
  apt-get update -qq >>"$LOG" 2>&1 || true
  apt-get install -y -qq --no-install-recommends chromium >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; cannot_install "apt-get install chromium failed (log: $LOG)"; }
fi
path="$(find_chromium)" || cannot_install "installed chromium but found no chromium executable"
echo "$path"
