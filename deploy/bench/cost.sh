#!/usr/bin/env bash
# CPU cost of receiving: instructions per stored object under valgrind's callgrind, a figure
# that does not move with the machine's noise; see cost.py.   ./deploy/bench/cost.sh [--count N]
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v storescu >/dev/null || missing+=(dcmtk)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release --locked
exec python3 deploy/bench/cost.py "$@"
