#!/usr/bin/env bash
# Issue 6, step 1: seed noise of EfficientNet-B0 at the proxy budget (base 64 px, full
# Imagenette train split, `proxy` recipe defaults). Resumable: re-run the same command.
set -euo pipefail
seed=${1:?seed}
cd "$(dirname "$0")/../.."
exec nice -n 10 .venv/bin/python -m rubik train --model efficientnet_b0 --base-resolution 64 \
  --data "${RUBIK_DATA_DIR:-../shared/datasets/imagenette}" --recipe proxy --seed "$seed" \
  --threads 1 --workers 1 --quiet --resume --out "runs/imagenette_study/b0_seed$seed"
