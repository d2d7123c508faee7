#!/usr/bin/env bash
# Run a study sweep (e.g. the decisive experiments, preset imagenette_long) on a GPU node within a deadline,
# and pack its records for the trip back. Meant as device_check.sh's extra stage:
#
#   bash benchmarks/device_check.sh ... --extra 'bash benchmarks/device_study.sh /tmp/study'
#
# STUDY_DIR must already be initialised (`rubik study init`); its tensor caches may be building in the
# background (`rubik study cache ... && touch STUDY_DIR.cached`): this script waits for that flag (at most
# CACHE_WAIT_S, default 120 s). The sweep runs `--processes N` workers on cuda (default $RUBIK_PROCESSES, which
# device_check.sh exports from its own --processes, else 12) and is
# stopped 25 s before $RUBIK_STAGE_LIMIT_S (set by device_check.sh) so the records can be packed: finished
# trials are records (a killed trial leaves none and reruns on the next `rubik sweep run`). Writes
# $RUBIK_RESULTS_DIR/study.tgz (sweep.json + trials/*.json) and prints `rubik sweep status`.
#
#   bash benchmarks/device_study.sh STUDY_DIR [--processes N] [--order short-first|spec|long-first]
#
# --order (default short-first): which trials first (`rubik sweep run --order`); against a deadline the
# cheapest trials (FLOPs x epochs) first give the most records (in spec order 20-epoch trials came first).
set -u
S=${1:?usage: device_study.sh STUDY_DIR [--processes N] [--order ORDER]}
shift
NPROC=${RUBIK_PROCESSES:-12}
ORDER=short-first
while [ $# -gt 0 ]; do
    case "$1" in
        --processes) NPROC=$2; shift ;;
        --order) ORDER=$2; shift ;;
        *) echo "device_study.sh: error: unknown argument '$1' (usage: device_study.sh STUDY_DIR [--processes N] [--order ORDER])" >&2; exit 2 ;;
    esac
    shift
done
PY=${PYTHON:-python3}
OUT=${RUBIK_RESULTS_DIR:-benchmarks/results}
T0=$(date +%s)
LIMIT=${RUBIK_STAGE_LIMIT_S:-300}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
wait_s=${CACHE_WAIT_S:-120}
while [ ! -e "$S.cached" ] && [ "$wait_s" -gt 0 ] && [ "$(left)" -gt 60 ]; do sleep 2; wait_s=$((wait_s - 2)); done
[ -e "$S.cached" ] && echo "[device_study] tensor caches ready after $(( $(date +%s) - T0 )) s" \
    || echo "[device_study] caches not flagged ready: the workers build what they miss"
RUN_S=$(( $(left) - 25 ))
echo "[device_study] sweep run for at most ${RUN_S}s with $NPROC processes on cuda, order $ORDER"
timeout --kill-after=5 "$RUN_S" "$PY" -m rubik sweep run "$S" --device cuda --processes "$NPROC" --order "$ORDER" --no-progress
echo "[device_study] sweep run exited with $? after $(( $(date +%s) - T0 )) s"
"$PY" -m rubik sweep status "$S" --top 5 || true
tar czf "$OUT/study.tgz" -C "$S" sweep.json trials && echo "[device_study] packed $(ls "$S/trials" | wc -l) records into $OUT/study.tgz"
