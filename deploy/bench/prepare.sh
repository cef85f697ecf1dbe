# Sourced by the benchmark scripts, from the project root: installs the Debian packages whose
# commands are missing, then builds the release binary.
#   prepare dcmtk:storescu orthanc:Orthanc ...     (package:command)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

prepare() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair#*:}" >/dev/null || missing+=("${pair%%:*}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The Debian package starts its own Orthanc service; the benchmarks run private instances.
  if [[ " $* " == *" orthanc:"* ]]; then
    as_root service orthanc stop >/dev/null 2>&1 || true
  fi
  cargo build --release --locked
}
