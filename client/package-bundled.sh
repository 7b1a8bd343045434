#!/usr/bin/env bash
# A platform-specific .vsix whose `vramlint.importStrategy: useBundled` works: it carries vramlint
# and its dependencies in bundled/libs, installed for PYTHON (default .venv/bin/python). libcst, a
# dependency, is compiled for one platform and one CPython version, so the bundle runs only on an
# interpreter of that version and platform: bundled/bundle.json records them, and the extension
# checks them before it starts the server.
#   PYTHON=/usr/bin/python3.12 bash client/package-bundled.sh   ->  vramlint-<target>-py3.12-<version>.vsix
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

rm -rf bundled
"$PYTHON" -m pip install -q --disable-pip-version-check --no-compile --target bundled/libs .
rm -rf bundled/libs/bin
"$PYTHON" - > bundled/bundle.json <<'PY'
import json, sys, sysconfig
sys.path.insert(0, "bundled/libs")
import vramlint
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "platform": sysconfig.get_platform(),
                  "vramlint": vramlint.__version__}))
PY
read -r PY PLATFORM < <("$PYTHON" -c 'import sys, sysconfig; print("%d.%d" % sys.version_info[:2], sysconfig.get_platform())')
case "$PLATFORM" in
    linux-x86_64) TARGET=linux-x64 ;;
    linux-aarch64) TARGET=linux-arm64 ;;
    macosx-*-arm64) TARGET=darwin-arm64 ;;
    macosx-*-x86_64) TARGET=darwin-x64 ;;
    win-amd64) TARGET=win32-x64 ;;
    *) echo "package-bundled: no VS Code target for the platform $PLATFORM" >&2; exit 1 ;;
esac
VERSION=$(node -p 'require("./package.json").version')
OUT="vramlint-$TARGET-py$PY-$VERSION.vsix"
npx vsce package --no-dependencies --readme-path client/README.md \
    --target "$TARGET" --out "$OUT"
rm -rf bundled
echo "package-bundled: $OUT (Python $PY, $PLATFORM)"
