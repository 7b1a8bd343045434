#!/usr/bin/env bash
# Installs code-server (VS Code for the browser) from the npm registry into .e2e/code-server, for
# the end-to-end test. A plain `npm install code-server` fails on these machines (postinstall as
# root, the kerberos module, ripgrep downloaded from GitHub): this does its steps by hand
# (docs/vscode.md, "Tests"). Needs libkrb5-dev and ripgrep (Debian packages).
# Idempotent: a finished install (its stamp file) is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=4.100.3  # VS Code 1.100.3; the newest code-server that runs on Node 20
DIR=.e2e/code-server
STAMP="$DIR/installed-$VERSION"
if [ -f "$STAMP" ]; then
    echo "code-server $VERSION: already installed in $DIR"
    exit 0
fi
for tool in rg krb5-config; do
    command -v "$tool" >/dev/null || { echo "setup-code-server: '$tool' is missing (apt-get install ripgrep libkrb5-dev)" >&2; exit 1; }
done

rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
LOG="$PWD/setup.log"
# The steps' output goes to setup.log; a failing step prints its end.
run() {
    "$@" >>"$LOG" 2>&1 || { echo "setup-code-server: failed: $*" >&2; tail -40 "$LOG" >&2; exit 1; }
}
echo '{"name": "vramlint-e2e-code-server", "private": true}' > package.json
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
run npm install --no-save --ignore-scripts "code-server@$VERSION"
run npm rebuild argon2

cd node_modules/code-server/lib/vscode
run npm install --omit=dev --ignore-scripts
run npm rebuild kerberos @parcel/watcher @vscode/deviceid @vscode/spdlog native-watchdog
# node-pty's postinstall fails only at an optional last step, after pty.node is built.
(cd node_modules/node-pty && run npx --yes node-gyp rebuild)
# @vscode/ripgrep downloads its binary from GitHub: use Debian's.
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
# Their postinstall runs here (as root it needs no flag with this npm).
(cd extensions && run npm install --omit=dev)
cd - >/dev/null

touch "installed-$VERSION"
echo "code-server $VERSION: installed in $DIR"
