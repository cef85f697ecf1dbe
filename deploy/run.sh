#!/usr/bin/env bash
# The README's run command: installs the diagnostic viewer's files once (deploy/viewer.sh,
# from the npm registry, checksum pinned) under data/viewer/, then runs the service with the
# defaults in config/. Arguments are passed to `telecardio serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/viewer.sh data/viewer
exec cargo run --release -- serve "$@"
