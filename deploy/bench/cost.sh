#!/usr/bin/env bash
# CPU cost of receiving: instructions per stored object under valgrind's callgrind, a figure
# that does not move with the machine's noise; see cost.py.   ./deploy/bench/cost.sh [--count N]
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/bench/prepare.sh
prepare dcmtk:storescu valgrind:valgrind
exec python3 deploy/bench/cost.py "$@"
