#!/usr/bin/env bash
# C-STORE latency from an empty index to a large one; see latency.py for what is measured.
#   ./deploy/bench/latency.sh [--runs N] [--count N] [--large N]
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v storescu >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk >/dev/null
fi
cargo build --release --locked
exec python3 deploy/bench/latency.py "$@"
