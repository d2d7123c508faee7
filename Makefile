# One-stop entry points. Everything installs into .venv from scratch.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= $(or $(RUBIK_DATA_DIR),../shared/datasets/imagenette)
PRESET ?= cpu

.PHONY: venv test reproduce models figures report api clean-venv

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: these builds lie on our machines' disk (see README)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	# the numeric, image and plotting libraries at the versions that reproduced the reference run
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	# a kernel of our own name inside the venv: the user's own Jupyter kernels stay untouched
	$(PY) -m ipykernel install --sys-prefix --name rubik --display-name "Python (rubik)" >/dev/null
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q

reproduce: venv
	RUBIK_DATA_OPTION="DATA=PATH (make reproduce DATA=PATH)" $(PY) -m rubik reproduce --preset $(PRESET) --data $(DATA)

# regenerate the figures made from committed records (no training; under a minute) into figures/
figures: venv
	$(PY) -m rubik figures data/results/imagenette --out figures
	$(PY) -m rubik study report data/results/imagenette_longer/sweep data/results/imagenette_long/sweep \
		--out data/results/imagenette_longer --copy-figures-to figures
	$(PY) -m rubik latency --sweep data/results/imagenette/sweep --out data/results/imagenette/tables/latency_cpu.csv \
		--from-csv --report data/results/imagenette
	cp data/results/imagenette/figures/fig_latency_frontier.png figures/

# every number REPORT.md quotes about the 5-epoch study, recomputed from its committed records
report: venv
	$(PY) -m rubik report data/results/imagenette --b0-runs runs/imagenette_study/budget/b0_e5_seed1 \
		runs/imagenette_study/budget/b0_e5_seed2

# docs/API.md from the package's signatures and docstrings (tests/test_apidoc.py fails when it is stale)
api: venv
	$(PY) tools/apidoc.py

models: venv
	$(PY) -m rubik models

clean-venv:
	rm -rf $(VENV)
