#!/usr/bin/env bash
# Pages benchmark: the worklist page with 10,000 open cases, and the size of our own scripts
# and styles; see pages.py.   ./deploy/bench/pages.sh [--cases N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked
exec python3 deploy/bench/pages.py "$@"
