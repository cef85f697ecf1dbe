#!/usr/bin/env bash
# Holter benchmark: the waveform viewer's overview of a 24-hour 3-lead 200 Hz recording, time
# and the service's peak memory; see holter.py.   ./deploy/bench/holter.sh [--hours H] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v storescu >/dev/null || { echo "needs DCMTK (./deploy/test.sh installs it)" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo "needs .venv with pydicom (./deploy/test.sh makes it)" >&2; exit 1; }
cargo build --release --locked
exec python3 deploy/bench/holter.py "$@"
