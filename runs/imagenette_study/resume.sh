#!/usr/bin/env bash
# Resume the Imagenette study on a fresh machine (each session starts with no venv and no
# tensor cache): build the venv, restart `rubik reproduce` at the sweep or, once it is
# finished, at the tiny-vs-giant notebook 05 (finished trials are kept in both), and commit
# finished records every 10 minutes.
# Usage: runs/imagenette_study/resume.sh [DATA_DIR]     (logs: runs/imagenette_study/reproduce.log)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-${RUBIK_DATA_DIR:-../shared/datasets/imagenette}}
make venv >/tmp/rubik_venv.log 2>&1 || { tail -20 /tmp/rubik_venv.log; exit 1; }
# a finished sweep goes straight on to 05 (it refits the formula from the sweep itself), so that
# the committed executed notebooks 02-04 are not rewritten by a run with nothing to train
start=$(.venv/bin/python -c "from rubik.sweep import sweep_status as s; st = s('data/results/imagenette/sweep'); print('05' if st['done'] == st['total'] else '02')")
echo "resuming at notebook $start"
nohup .venv/bin/rubik reproduce --preset imagenette --data "$data" \
  --out data/results/imagenette --from "$start" > runs/imagenette_study/reproduce.log 2>&1 &
echo "reproduce: pid $!"
nohup runs/imagenette_study/commit_records.sh 600 > /tmp/commit_records.log 2>&1 &
echo "commit_records: pid $!"
