#!/usr/bin/env bash
# Receiving benchmark against DCMTK storescp and Orthanc; see store.py for what is measured.
#   ./deploy/bench/store.sh [--runs N] [--small N] [--tiny N] [--large N] [--only LIST] [--no-fsync]
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/bench/prepare.sh
prepare dcmtk:storescu orthanc:Orthanc postgresql-client:psql
exec python3 deploy/bench/store.py "$@"
