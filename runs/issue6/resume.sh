#!/usr/bin/env bash
# Resume the Imagenette study on a fresh machine (each session starts with no venv and no
# tensor cache): build the venv, restart `rubik reproduce` from the sweep (finished trials
# are kept; a completed sweep passes straight on to notebooks 03-07, and the tiny-vs-giant
# sweeps of 05 resume the same way), and commit finished records every 10 minutes.
# Usage: runs/issue6/resume.sh [DATA_DIR]     (logs: runs/issue6/reproduce.log)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-${RUBIK_DATA_DIR:-../shared/datasets/imagenette}}
make venv >/tmp/rubik_venv.log 2>&1 || { tail -20 /tmp/rubik_venv.log; exit 1; }
nohup .venv/bin/rubik reproduce --preset imagenette --data "$data" \
  --out data/results/imagenette --from 02 > runs/issue6/reproduce.log 2>&1 &
echo "reproduce: pid $!"
nohup runs/issue6/commit_records.sh 600 > /tmp/commit_records.log 2>&1 &
echo "commit_records: pid $!"
