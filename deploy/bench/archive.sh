#!/usr/bin/env bash
# Archive governance benchmark: fixity read speed against the disk's, an incremental backup
# of an unchanged 100,000-object archive, and audit-trail verification over a million events;
# see archive.py.
#   ./deploy/bench/archive.sh [--only fixity|backup|audit] [--runs N] [--large N] [--objects N]
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v storescu >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk >/dev/null
fi
cargo build --release --locked
exec python3 deploy/bench/archive.py "$@"
