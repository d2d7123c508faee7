# One-stop entry points. Everything installs into .venv from scratch.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= $(or $(RUBIK_DATA_DIR),../shared/datasets/imagenette)
PRESET ?= cpu

.PHONY: venv test reproduce models clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: these builds lie on our machines' disk (see README)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	# a kernel of our own name inside the venv: the user's own Jupyter kernels stay untouched
	$(PY) -m ipykernel install --sys-prefix --name rubik --display-name "Python (rubik)" >/dev/null
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q

reproduce: venv
	$(PY) -m rubik reproduce --preset $(PRESET) --data $(DATA)

models: venv
	$(PY) -m rubik models

clean-venv:
	rm -rf $(VENV)
