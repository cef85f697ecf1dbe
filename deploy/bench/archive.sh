#!/usr/bin/env bash
# Archive governance benchmark: fixity read speed against the disk's, an incremental backup
# of an unchanged 100,000-object archive, and audit-trail verification over a million events;
# see archive.py.
#   ./deploy/bench/archive.sh [--only fixity|backup|audit] [--runs N] [--large N] [--objects N]
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/bench/prepare.sh
prepare dcmtk:storescu
exec python3 deploy/bench/archive.py "$@"
