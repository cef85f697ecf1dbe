#!/usr/bin/env bash
# Indicator benchmark: a year of 100,000 cases (tests/indicators/history.py) loaded into the
# index on SQLite and on PostgreSQL, then `telecardio indicators --year` timed as a whole
# command; see indicators.py.
#   ./deploy/bench/indicators.sh [--cases N] [--runs N] [--pg URL]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked
exec python3 deploy/bench/indicators.py "$@"
