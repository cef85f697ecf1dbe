#!/usr/bin/env bash
# Holter import benchmark: a 24-hour 3-lead 200 Hz ISHNE file and a 48-hour 12-lead 1 kHz EDF+
# file uploaded to POST /api/holter, timed end to end, with the service's peak memory; see
# holter_import.py.   ./deploy/bench/holter_import.sh [--runs N] [--edf-hours H]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || { echo "needs .venv with ishneholterlib and pyedflib (./deploy/test.sh makes it)" >&2; exit 1; }
cargo build --release --locked
exec .venv/bin/python deploy/bench/holter_import.py "$@"
