#!/usr/bin/env bash
# Copy the finished records of a study running outside the repository into its committed folder
# and commit them (records are committed as they land; the run itself never writes into main).
#   tools/sync_study.sh SRC DEST [REPORT_COMMAND]
#   tools/sync_study.sh /work/studies/imagenette_longer data/results/imagenette_longer/sweep
#
# REPORT_COMMAND (optional, run with bash from the repository root after copying new records):
# regenerates the tables and figures made from DEST's records; everything it changes under DEST's
# parent folder (tables/, figures/) and under figures/ (tracked files, or new fig_study_* files) is
# committed in the same commit as the records, so the committed tables always match the committed
# records (tests/test_committed_study.py re-derives them). For DEST =
# data/results/imagenette_longer/sweep the default is the pre-registered report of issue 21 (both
# decisive studies; $PYTHON, default .venv/bin/python); pass '' to skip it.
#
# SYNC_STAGE_ONLY=1 stages the same paths without committing them, so that text quoting the new
# numbers (REPORT.md, README.md) can go into the same commit as the records it quotes.
set -euo pipefail
src=${1:?running sweep folder}; dest=${2:?committed sweep folder}
cd "$(dirname "$0")/.."
dest=${dest%/}
PYTHON=${PYTHON:-.venv/bin/python}
if [ "$#" -ge 3 ]; then
  report=$3
elif [ "$dest" = data/results/imagenette_longer/sweep ]; then
  report="$PYTHON -m rubik study report data/results/imagenette_longer/sweep data/results/imagenette_long/sweep --out data/results/imagenette_longer --copy-figures-to figures"
else
  report=
fi
mkdir -p "$dest/trials"
cmp -s "$src/sweep.json" "$dest/sweep.json" || { echo "sync_study: $src/sweep.json differs from $dest/sweep.json" >&2; exit 2; }
n=0
for f in "$src"/trials/*.json; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  if ! cmp -s "$f" "$dest/trials/$b"; then cp "$f" "$dest/trials/$b"; n=$((n + 1)); fi
done
# records not committed yet: copied now, or by an earlier call whose report command failed
pending=$(git status --porcelain --untracked-files=all -- "$dest/trials" | wc -l)
if [ "$pending" -gt 0 ]; then
  root=$(dirname "$dest")
  paths=("$dest/trials")
  if [ -n "$report" ]; then
    echo "sync_study: $report" >&2
    if ! bash -c "$report" >/dev/null; then
      echo "sync_study: the report command failed; records copied but not committed" >&2
      exit 3
    fi
    for p in "$root/tables" "$root/figures"; do [ -e "$p" ] && paths+=("$p"); done
    # figures/ (the repository's): tracked files the report changed, and new study figures
    while IFS= read -r f; do paths+=("$f"); done < <(git ls-files -m -o --exclude-standard -- 'figures/fig_study_*')
  fi
  git add -- "${paths[@]}"
  if [ "${SYNC_STAGE_ONLY:-0}" = 1 ]; then
    echo "sync_study: $n new or changed record file(s), $pending staged (SYNC_STAGE_ONLY=1: commit them yourself)"
    exit 0
  fi
  git commit -q -m "$(basename "$root") study: $pending record file(s)${report:+, tables and figures regenerated}" -- "${paths[@]}"
fi
echo "sync_study: $n new or changed record file(s), $pending committed"
