#!/usr/bin/env bash
# Installs the diagnostic viewer the pages open: the OHIF Viewer's prebuilt application
# (npm package @ohif/app, its dist/ folder), at the pinned version and checksum, into
# data/viewer/ (or the directory given as $1). The files are not part of the repository.
# Idempotent: does nothing when that version is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.13.2
INTEGRITY='sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=='
TARGET=${1:-data/viewer}
# Where the service serves it from: every absolute path in the build is rewritten to this.
BASE=/viewer/

if [ -f "$TARGET/.installed" ] && [ "$(cat "$TARGET/.installed")" = "@ohif/app@$VERSION" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is needed once to fetch the viewer (Debian: apt-get install npm)" >&2
  exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "fetching the OHIF Viewer @ohif/app@$VERSION from the npm registry" >&2
(cd "$WORK" && npm pack --silent "@ohif/app@$VERSION" >/dev/null)
TARBALL=$(ls "$WORK"/ohif-app-*.tgz)
GOT="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$TARBALL")"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "the viewer package does not match its pinned checksum: $GOT" >&2
  exit 1
fi
tar -xzf "$TARBALL" -C "$WORK" package/dist
DIST="$WORK/package/dist"
# The build expects to be served at /; it is served at /viewer/. Its own app-config.js is
# replaced by the one the service writes (our DICOMweb, same origin, session cookie).
python3 - "$DIST" "$BASE" <<'PY'
import glob, os, re, sys
dist, base = sys.argv[1], sys.argv[2]
index = os.path.join(dist, "index.html")
text = open(index, encoding="utf-8").read()
text = text.replace('window.PUBLIC_URL="/"', 'window.PUBLIC_URL="%s"' % base)
text = re.sub(r'(href|src)="/(?!/)', r'\1="%s' % base, text)
open(index, "w", encoding="utf-8").write(text)
patched = 0
for path in glob.glob(os.path.join(dist, "*.js")):
    body = open(path, encoding="utf-8", errors="surrogateescape").read()
    if '__webpack_require__.p = "/";' in body:
        body = body.replace('__webpack_require__.p = "/";', '__webpack_require__.p = "%s";' % base)
        open(path, "w", encoding="utf-8", errors="surrogateescape").write(body)
        patched += 1
if patched == 0:
    sys.exit("no public path found to rewrite in the viewer's bundles")
os.remove(os.path.join(dist, "app-config.js"))
PY
rm -rf "$TARGET.new"
mkdir -p "$(dirname "$TARGET")"
mv "$DIST" "$TARGET.new"
echo "@ohif/app@$VERSION" > "$TARGET.new/.installed"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
echo "viewer installed in $TARGET" >&2
