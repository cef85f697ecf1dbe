#!/usr/bin/env bash
# C-STORE latency from an empty index to a large one; see latency.py for what is measured.
#   ./deploy/bench/latency.sh [--runs N] [--count N] [--large N]
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/bench/prepare.sh
prepare dcmtk:storescu
exec python3 deploy/bench/latency.py "$@"
