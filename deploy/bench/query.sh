#!/usr/bin/env bash
# Query benchmark: study-level search by Patient ID over QIDO-RS and C-FIND, telecardio beside
# Orthanc on a shared corpus, and telecardio alone on a million-instance index; see query.py.
#   ./deploy/bench/query.sh [--shared N] [--large N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v findscu >/dev/null || missing+=(dcmtk)
command -v Orthanc >/dev/null || missing+=(orthanc)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package starts its own Orthanc service; the benchmark runs a private instance.
as_root service orthanc stop >/dev/null 2>&1 || true
cargo build --release --locked
exec python3 deploy/bench/query.py "$@"
