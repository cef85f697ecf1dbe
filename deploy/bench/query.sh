#!/usr/bin/env bash
# Query benchmark: study-level search by Patient ID over QIDO-RS and C-FIND, telecardio beside
# Orthanc on a shared corpus, and telecardio alone on a million-instance index; see query.py.
#   ./deploy/bench/query.sh [--shared N] [--large N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/bench/prepare.sh
prepare dcmtk:findscu orthanc:Orthanc
exec python3 deploy/bench/query.py "$@"
