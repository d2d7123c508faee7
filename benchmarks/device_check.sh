#!/usr/bin/env bash
# The prepared GPU check: one command, self-contained for a GPU node without network, within a time budget.
#
#   bash benchmarks/device_check.sh [--quick] [--budget-s 540] [--out DIR] [--data DIR]
#                                   [--processes N] [--trials 20] [--extra "CMD"] [--no-install]
#                                   [--stages cuda_tests,throughput,ddp_train,study_slice,extra] [--tp-args "ARGS"]
#
# Needs on the node: Python 3.12 with torch, torchvision, timm, pandas, scikit-learn, tqdm, pyyaml, pytest;
# wheels of anything else in .whl/ (benchmarks/fetch_wheels.sh makes it: ptflops); the compact Imagenette in
# --data / $RUBIK_DATA_DIR / .devdata/imagenette (`rubik data compact SRC .devdata/imagenette`).
# Results go to --out / $RUBIK_RESULTS_DIR / benchmarks/results/, all in its top level, written as each stage
# ends: device_check.log (everything printed), device_check.json (environment + one entry per stage),
# throughput.json, ddp_train.json, study_slice.json.
#
# Stages, each under `timeout` (a failure is logged and the check goes on):
#   1 cuda_tests   pytest -m cuda
#   2 throughput   benchmarks/gpu_throughput.py: images/s by model x input pipeline, eager vs compiled, timm rows
#   3 ddp_train    torchrun --nproc_per_node=1 -m rubik train: one epoch of Imagenette (296 steps) under DDP
#   4 study_slice  benchmarks/study_slice.py: --trials trials of the committed Imagenette study, --processes at once
#                  on the GPU; wall time, projection to all 105, top-1 against the committed CPU records
# --processes N (trials at once on the GPU) is the one way to set the count; its default is $RUBIK_PROCESSES, else
# 10. It is exported to the stages as RUBIK_PROCESSES (device_study.sh reads it); a PROCESSES variable is ignored.
#   5 extra        --extra "CMD" (bash -c), given whatever budget is left; it sees $RUBIK_DATA_DIR,
#                  $RUBIK_RESULTS_DIR (write at most 3 files there) and $RUBIK_DEVICE (cuda or cpu)
# --quick: every stage tiny (whole check ~1.5 min on a GPU node; no torch.compile), for a first shakedown. Without a GPU the same stages run
# on the CPU at tiny sizes (what CI-less checks on a laptop can do); without the dataset, --quick makes a
# tiny synthetic one and a full run skips stages 3-4.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

QUICK=0
BUDGET=""
OUTDIR=${RUBIK_RESULTS_DIR:-}
DATA=${RUBIK_DATA_DIR:-}
NPROC=${RUBIK_PROCESSES:-10}
TRIALS=20
EXTRA=""
INSTALL=1
STAGES_WANTED="cuda_tests,throughput,ddp_train,study_slice,extra"
TP_EXTRA=""
BUDGET_SET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --budget-s) BUDGET=$2; BUDGET_SET=1; shift ;;
        --out) OUTDIR=$2; shift ;;
        --data) DATA=$2; shift ;;
        --processes) NPROC=$2; shift ;;
        --trials) TRIALS=$2; shift ;;
        --extra) EXTRA=$2; shift ;;
        --no-install) INSTALL=0 ;;   # do not `pip install -e .` (a shared venv that already has rubik)
        --stages) STAGES_WANTED=$2; shift ;;   # run only these stages (the others are listed as skipped)
        --tp-args) TP_EXTRA=$2; shift ;;       # more arguments for benchmarks/gpu_throughput.py
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "device_check.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$NPROC" in ''|*[!0-9]*|0) echo "device_check.sh: error: --processes / RUBIK_PROCESSES must be a positive integer, got '$NPROC'" >&2; exit 2 ;; esac
export RUBIK_PROCESSES=$NPROC   # the stages (device_study.sh) take the same count
[ -n "$BUDGET" ] || BUDGET=$([ $QUICK = 1 ] && echo 120 || echo 540)   # a CPU-only quick run gets 600 (below)
OUTDIR=${OUTDIR:-benchmarks/results}
DATA=${DATA:-.devdata/imagenette}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/device_check.log"
START=$(date +%s)
WORK=$(mktemp -d /tmp/rubik-check.XXXXXX)
STAGES="$WORK/stages.tsv"
: > "$STAGES"
export PYTHONUNBUFFERED=1
export RUBIK_CACHE_DIR=${RUBIK_CACHE_DIR:-$WORK/cache}
PY=${PYTHON:-python3}

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(date +%s) + START )); }

# stage NAME LIMIT_S CMD...: run CMD under timeout (LIMIT_S, capped by the budget left minus a reserve)
RESERVE=8
SLOW=1   # stage limits are sized for a GPU node; a CPU-only run gets 3x
stage() {
    local name=$1 limit=$(( $2 * SLOW )); shift 2
    if [[ ",$STAGES_WANTED," != *",$name,"* ]]; then
        printf '%s\tskipped\t0\tnot in --stages\n' "$name" >> "$STAGES"
        echo "=== stage $name skipped: not in --stages"
        return
    fi
    local avail=$(( $(left) - RESERVE ))
    [ "$limit" -gt "$avail" ] && limit=$avail
    echo
    echo "=== [$(elapsed)s] stage $name (limit ${limit}s): $*"
    if [ "$limit" -lt 5 ]; then
        printf '%s\tskipped\t0\tno budget left\n' "$name" >> "$STAGES"
        echo "=== stage $name skipped: budget spent"
        return
    fi
    local t0=$(date +%s)
    export RUBIK_STAGE_LIMIT_S=$limit   # a stage may plan its own work within this
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    local dt=$(( $(date +%s) - t0 ))
    local status=ok
    [ $rc -ne 0 ] && status="rc=$rc"
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="timeout(${limit}s)"
    printf '%s\t%s\t%s\t\n' "$name" "$status" "$dt" >> "$STAGES"
    echo "=== [$(elapsed)s] stage $name: $status in ${dt}s"
    write_json
}
skip() {  # skip NAME WHY
    printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$STAGES"
    echo "=== stage $1 skipped: $2"
}
write_json() {
    "$PY" - "$OUTDIR" "$STAGES" "$WORK/env.json" <<'PYEOF' || true
import json, os, sys
from pathlib import Path
out, stages, env = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
def load(name):
    try:
        return json.loads((out / name).read_text())
    except Exception:
        return None
def summary(name):
    if name == "cuda_tests":
        p = Path(os.environ["WORK"]) / "pytest.txt"
        lines = [l for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
        return lines[-1].strip("= ") if lines else ""
    if name == "throughput" and (t := load("throughput.json")):
        ok = [r for r in t["rows"] if r.get("status") == "ok"]
        best = {f"{r['model']}/{r['kind']}": round(r["images_per_s"]) for r in ok}
        return f"{len(ok)}/{len(t['rows'])} rows ok; img/s " + ", ".join(f"{k} {v}" for k, v in best.items())
    if name == "ddp_train" and (r := load("ddp_train.json")):
        return f"top1 {r.get('top1', 0):.2f} % after {r.get('epochs')} epoch(s), {r.get('images_per_s') or 0:.0f} img/s, {r.get('train_time_s') or 0:.0f} s training"
    if name == "study_slice" and (s := load("study_slice.json")):
        if not s.get("done"):
            return f"0/{s.get('trials')} trials done"
        ci = s.get("ci95") or [float("nan")] * 2
        return (f"{s['done']}/{s['trials']} trials in {s['wall_s']:.0f} s; all {s['n_all']} ~{s['projected_all_s_by_count'] / 60:.1f} min "
                f"(count) / ~{s['projected_all_s_by_flops'] / 60:.1f} min (FLOPs); top-1 diff {s['mean_diff']:+.2f} "
                f"[{ci[0]:+.2f}, {ci[1]:+.2f}] sd {s['sd_diff'] or 0:.2f} vs pair noise {s['pair_noise_sd']:.2f}")
    return ""
rows = []
for line in stages.read_text().splitlines():
    name, status, seconds, note = (line.split("\t") + ["", "", ""])[:4]
    rows.append({"stage": name, "status": status, "seconds": int(seconds or 0), "summary": note or summary(name)})
obj = {"env": json.loads(env.read_text()) if env.exists() else None, "stages": rows}
tmp = out / ".device_check.json.tmp"
tmp.write_text(json.dumps(obj, indent=1) + "\n")
os.replace(tmp, out / "device_check.json")
PYEOF
}
export WORK

run_check() {
echo "=== device_check: $(date -u +%FT%TZ) quick=$QUICK budget=${BUDGET}s out=$OUTDIR data=$DATA repo=$REPO"

# --- setup: wheels, the project (no network: --no-deps, no build isolation), environment facts
if ls .whl/*.whl >/dev/null 2>&1; then
    timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" .whl/*.whl && echo "installed wheels: $(cd .whl && ls *.whl | tr '\n' ' ')" \
        || echo "WARNING: installing .whl/*.whl failed"
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no .whl/ wheels (benchmarks/fetch_wheels.sh makes them); FLOPs counts need ptflops"
fi
[ $INSTALL = 1 ] && timeout 90 "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$WORK/pip.txt" 2>&1 \
    && echo "installed rubik (editable, --no-deps)" \
    || echo "rubik not pip-installed (--no-install, or: $(tail -1 "$WORK/pip.txt" 2>/dev/null)); using PYTHONPATH=$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - "$WORK/env.json" <<'PYEOF' || echo '{}' > "$WORK/env.json"
import json, os, platform, subprocess, sys
import torch
env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
       "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(), "host": platform.node()}
try:
    import torchvision, timm
    env.update(torchvision=torchvision.__version__, timm=timm.__version__)
except Exception as e:
    env["import_error"] = repr(e)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
try:
    env["git"] = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
except Exception:
    pass
try:
    import ptflops
    env["ptflops"] = getattr(ptflops, "__version__", "yes")
except ImportError:
    env["ptflops"] = None
json.dump(env, open(sys.argv[1], "w"), indent=1)
print("environment:", json.dumps(env))
PYEOF
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    DEVICE=cuda
else
    DEVICE=cpu
    [ $BUDGET_SET = 0 ] && BUDGET=600
    SLOW=3
    echo "WARNING: no CUDA device: every stage runs on the CPU at tiny sizes (budget ${BUDGET}s)"
fi
write_json

# data: the compact Imagenette, or (quick) a tiny synthetic ImageFolder
if [ ! -d "$DATA/train" ]; then
    if [ $QUICK = 1 ] || [ $DEVICE = cpu ]; then
        echo "no dataset at $DATA: making a tiny synthetic ImageFolder (10 classes) for the quick stages"
        DATA="$WORK/tinydata"
        "$PY" -c "
import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path
from gpu_throughput import make_jpeg_set
make_jpeg_set(Path('$DATA'), 200, 100, size=(120, 90), workers=4)"
    else
        DATA=""
        echo "WARNING: no dataset at ${RUBIK_DATA_DIR:-.devdata/imagenette} (pass --data): ddp_train and study_slice are skipped"
    fi
fi
SMALL=0
{ [ $QUICK = 1 ] || [ $DEVICE = cpu ]; } && SMALL=1

# --- 1: CUDA-marked tests (only the files that have some: others may import what the node lacks, e.g. nbformat)
CUDA_TEST_FILES=$(grep -l "mark.cuda" tests/test_*.py 2>/dev/null | tr '\n' ' ')
if [ -n "$CUDA_TEST_FILES" ]; then
    stage cuda_tests $([ $QUICK = 1 ] && echo 45 || echo 120) \
        bash -c "'$PY' -m pytest -m 'cuda and not slow' -q --tb=short -p no:cacheprovider --continue-on-collection-errors $CUDA_TEST_FILES 2>&1 | tee '$WORK/pytest.txt'; exit \${PIPESTATUS[0]}"
else
    skip cuda_tests "no test file has a cuda mark"
fi

# --- 2: throughput table
if [ $SMALL = 1 ]; then
    TP_ARGS=(--quick --models tinynet_e --kinds synthetic,timm,tensor,gpu_jpeg,folder --budget-s 25)
    TP_LIMIT=45
else
    TP_ARGS=(--budget-s 150 --workers "$(nproc)")
    TP_LIMIT=180
fi
stage throughput $TP_LIMIT "$PY" benchmarks/gpu_throughput.py --device $DEVICE --out "$OUTDIR/throughput.json" "${TP_ARGS[@]}" $TP_EXTRA

# --- 3: one-GPU DDP training run through torchrun
if [ -n "$DATA" ]; then
    TR_ARGS=(--data "$DATA" --pipeline tensor --model efficientnet_b0 --base-resolution 64 --recipe proxy
             -o lr_per_1024=0.008 -o warmup_epochs=0.3 -o ema=false --epochs 1 --batch-size 32 --workers 8
             --device $DEVICE --out "$WORK/ddp" --quiet)
    [ $SMALL = 1 ] && TR_ARGS+=(--train-per-class 16 --val-per-class 8)
    [ $DEVICE = cpu ] && TR_ARGS+=(--model tinynet_e)   # B0 is minutes on a busy CPU; the path is the same
    stage ddp_train $([ $SMALL = 1 ] && echo 60 || echo 90) bash -c \
        "'$PY' -m torch.distributed.run --standalone --nproc_per_node=1 -m rubik train $(printf '%q ' "${TR_ARGS[@]}") \
         && cp '$WORK/ddp/result.json' '$OUTDIR/ddp_train.json'"
else
    skip ddp_train "no dataset"
fi

# --- 4: a slice of the Imagenette study, several trials at once on the GPU
if [ -n "$DATA" ]; then
    if [ $SMALL = 1 ]; then
        SL_ARGS=(--quick --processes 2)
        SL_LIMIT=60
        [ $DEVICE = cpu ] && SL_LIMIT=180
    else
        SL_ARGS=(--n "$TRIALS" --processes "$NPROC")
        SL_LIMIT=$(( ($(left) - RESERVE - 5) / SLOW ))
        [ -n "$EXTRA" ] && SL_LIMIT=$(( SL_LIMIT * 2 / 3 ))   # leave the extra stage a third
    fi
    AVAIL=$(( ($(left) - RESERVE) / SLOW ))
    [ $SL_LIMIT -gt $AVAIL ] && SL_LIMIT=$AVAIL
    # the sweep stops 20 s before the stage limit so the comparison of finished trials is still written
    stage study_slice $SL_LIMIT "$PY" benchmarks/study_slice.py --data "$DATA" --device $DEVICE \
        --dir "$WORK/slice" --out "$OUTDIR/study_slice.json" --timeout-s $(( SL_LIMIT - 20 > 10 ? SL_LIMIT - 20 : 10 )) "${SL_ARGS[@]}"
else
    skip study_slice "no dataset"
fi

# --- 5: the lead's extra command, with what is left
if [ -n "$EXTRA" ]; then
    # the extra command sees the data, results folder (3 more files fit: 8 come back) and device
    export RUBIK_DATA_DIR="$DATA" RUBIK_RESULTS_DIR="$OUTDIR" RUBIK_DEVICE="$DEVICE"
    stage extra $(( ($(left) - RESERVE) / SLOW )) bash -c "$EXTRA"
fi

# --- summary (the end of the output is what a remote call returns)
write_json
echo
echo "=== device_check summary ($(elapsed)s of ${BUDGET}s; results in $OUTDIR: $(cd "$OUTDIR" && ls | tr '\n' ' '))"
"$PY" - "$OUTDIR" <<'PYEOF' || true
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
sys.path.insert(0, "benchmarks")
try:
    from gpu_throughput import print_table
    print_table(json.loads((out / "throughput.json").read_text()))
except Exception as e:
    print(f"(no throughput table: {e})")
try:
    s = json.loads((out / "study_slice.json").read_text())
    for r in s["rows"]:
        g = f"{r['gpu_top1']:.2f}" if r["gpu_top1"] is not None else r["status"]
        print(f"  slice {r['id']:<8} {r['resolution']:>3} px {r['flops'] / 1e6:6.1f} MFLOPs  cpu {r['cpu_top1']:.2f}  {s['device']} {g}  {r['gpu_time_s'] or 0:.0f} s")
except Exception as e:
    print(f"(no study slice: {e})")
d = json.loads((out / "device_check.json").read_text())
print(f"\n{'stage':<13}{'status':<16}{'s':>5}  summary")
for r in d["stages"]:
    print(f"{r['stage']:<13}{r['status']:<16}{r['seconds']:>5}  {r['summary']}")
PYEOF
}

# everything printed goes to the terminal and to the log (a pipeline, so the log is complete when the script ends)
run_check 2>&1 | tee "$LOG"
rm -rf "$WORK"
