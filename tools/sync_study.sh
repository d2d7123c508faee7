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
elif [ "$dest" = data/results/imagenette_128/sweep ]; then
  report="$PYTHON -m rubik study report data/results/imagenette_128/sweep data/results/imagenette_long/sweep --out data/results/imagenette_128"
else
  report=
fi
mkdir -p "$dest/trials"
cmp -s "$src/sweep.json" "$dest/sweep.json" || { echo "sync_study: $src/sweep.json differs from $dest/sweep.json" >&2; exit 2; }
# a complete trial record each (rubik.jobqueue.read_record_file: JSON, a status, per-image bits that hold together)
check_records() {
  "$PYTHON" - "$@" <<'PY'
import sys
from rubik.jobqueue import CorruptRecord, read_record_file
bad = 0
for f in sys.argv[1:]:
    try:
        read_record_file(f)
    except CorruptRecord as e:
        print(f"sync_study: {e}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
}
n=0
for f in "$src"/trials/*.json; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  cmp -s "$f" "$dest/trials/$b" && continue
  # copied whole or not at all: a temp file beside the record, checked, then renamed into place (a copy
  # cut short, or a record damaged at the source, never reaches DEST)
  tmp="$dest/trials/.$b.sync-tmp"
  cp "$f" "$tmp"
  if ! check_records "$tmp"; then
    rm -f "$tmp"
    echo "sync_study: $f is not a complete record; not copied" >&2
    continue
  fi
  mv -f "$tmp" "$dest/trials/$b"
  n=$((n + 1))
done
# records not committed yet: copied now, or by an earlier call whose report command failed
pending=$(git status --porcelain --untracked-files=all -- "$dest/trials" | wc -l)
if [ "$pending" -gt 0 ]; then
  root=$(dirname "$dest")
  # every record about to be staged, copied now or left by an earlier call
  mapfile -t records < <(git status --porcelain --untracked-files=all -- "$dest/trials" | sed 's/^...//' | grep '\.json$' || true)
  if [ "${#records[@]}" -gt 0 ] && ! check_records "${records[@]}"; then
    echo "sync_study: damaged record(s) in $dest/trials (named above); nothing staged" >&2
    exit 4
  fi
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
