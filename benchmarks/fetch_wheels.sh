#!/usr/bin/env bash
# Download into .whl/ the wheels benchmarks/device_check.sh installs on a GPU node without a package
# index. The node's image (Python 3.12, torch, torchvision, timm, pandas, scikit-learn, seaborn, tqdm,
# pyyaml, pytest, matplotlib) lacks only ptflops among the packages the check imports (FLOPs counts in
# rubik.flops); the check runs no notebooks, so papermill and its dependencies are not needed.
#
#   bash benchmarks/fetch_wheels.sh            # in the repository root; writes .whl/ (git-ignored)
#
# On the node the check installs them with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=(
    "ptflops==0.7.5"     # pure Python; needs only torch, which the node has
)
mkdir -p .whl
for w in "${WHEELS[@]}"; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "$w"
done
ls -l .whl
du -sh --apparent-size .whl
