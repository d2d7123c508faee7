#!/usr/bin/env bash
# Copy the finished records of a study running outside the repository into its committed folder
# and commit them (records are committed as they land; the run itself never writes into main).
#   tools/sync_study.sh /work/studies/imagenette_longer data/results/imagenette_longer/sweep
set -euo pipefail
src=${1:?running sweep folder}; dest=${2:?committed sweep folder}
cd "$(dirname "$0")/.."
mkdir -p "$dest/trials"
cmp -s "$src/sweep.json" "$dest/sweep.json" || { echo "sync_study: $src/sweep.json differs from $dest/sweep.json" >&2; exit 2; }
n=0
for f in "$src"/trials/*.json; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  if ! cmp -s "$f" "$dest/trials/$b"; then cp "$f" "$dest/trials/$b"; n=$((n + 1)); fi
done
if [ "$n" -gt 0 ]; then
  git add "$dest/trials"
  git commit -q -m "$(basename "$(dirname "$dest")") study: $n record file(s)" -- "$dest/trials"
fi
echo "sync_study: $n new or changed record file(s)"
