#!/usr/bin/env bash
# Issue 6, short-schedule tuning: B0, base 64 px, full Imagenette splits, proxy recipe with
# EPOCHS epochs and the given recipe overrides, evaluated once at the end.
# Usage: runs/imagenette_study/budget/tune.sh NAME EPOCHS SEED [-o key=value ...]   (resumable)
set -euo pipefail
name=${1:?name}; epochs=${2:?epochs}; seed=${3:?seed}; shift 3
cd "$(dirname "$0")/../../.."
exec .venv/bin/python -m rubik train --model efficientnet_b0 --base-resolution 64 \
  --data "${RUBIK_DATA_DIR:-../shared/datasets/imagenette}" --recipe proxy --epochs "$epochs" \
  -o eval_every=1000 "$@" --seed "$seed" --threads 1 --workers 1 --quiet --resume \
  --out "runs/imagenette_study/budget/$name"
