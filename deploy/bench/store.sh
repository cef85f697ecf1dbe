#!/usr/bin/env bash
# Receiving benchmark against DCMTK storescp and Orthanc; see store.py for what is measured.
#   ./deploy/bench/store.sh [--runs N] [--small N] [--large N]
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v storescu >/dev/null || missing+=(dcmtk)
command -v Orthanc >/dev/null || missing+=(orthanc)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package starts its own Orthanc service; the benchmark runs private instances.
as_root service orthanc stop >/dev/null 2>&1 || true
cargo build --release --locked
exec python3 deploy/bench/store.py "$@"
