#!/usr/bin/env bash
# Commit the finished trial records of the running study every INTERVAL seconds (default 600),
# so a session that ends abruptly loses at most the trials in flight. Only these paths are
# committed (`git commit -- PATHS`), whatever else is staged or edited.
set -uo pipefail
cd "$(dirname "$0")/../.."
interval=${1:-600}
paths=(data/results/imagenette/sweep/trials data/results/imagenette/tiny_vs_giant runs/imagenette_study/budget)
while true; do
  sleep "$interval"
  existing=(); for p in "${paths[@]}"; do [ -e "$p" ] && existing+=("$p"); done
  git add -- "${existing[@]}" 2>/dev/null
  mapfile -t staged < <(git diff --cached --name-only -- "${existing[@]}")
  if [ "${#staged[@]}" -gt 0 ]; then
    git commit -q -m "Imagenette study: ${#staged[@]} record file(s)" -- "${staged[@]}" && echo "$(date +%T) committed ${#staged[@]}"
  fi
done
