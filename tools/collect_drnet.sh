#!/bin/sh
# Copy a DRNet experiment's records (no checkpoints) into the repository:
#   tools/collect_drnet.sh runs/drnet/imagenette data/results/imagenette/drnet
# Only finished runs' files travel: eval.json, result.json, config.json, metrics.jsonl.
set -e
src=$1; dst=$2
cd "$src"
find . -name eval.json | while read -r f; do
    d=$(dirname "$f")
    mkdir -p "$dst/$d"
    for name in eval.json result.json config.json metrics.jsonl; do
        cp "$d/$name" "$dst/$d/$name"
    done
done
