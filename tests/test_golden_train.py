"""Behaviour unchanged across refactors: a fixed-seed ``rubik train`` gives the committed metrics.

``tests/data/golden_train.json`` was written by ``python tools/golden_train.py --write ...`` at commit
59a1b5c, before issue 23's redesign. On the machine type that wrote it (its CPU model and torch
version are stored beside the numbers) the metrics must match byte for byte; elsewhere floating-point
kernels may differ in the last bits, so losses and accuracies are compared to 1e-4 relative.
"""
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import golden_train  # noqa: E402

GOLDEN = REPO / "tests" / "data" / "golden_train.json"


def _close(a, b, path="metrics"):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))} differ"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_fixed_seed_training_matches_the_committed_metrics():
    golden = json.loads(GOLDEN.read_text())
    now = golden_train.metrics()
    if golden["machine"] == golden_train.machine():
        assert golden_train.canonical(now) == golden_train.canonical(golden["metrics"])
    else:
        _close(now, golden["metrics"])
    assert now["result"]["top1"] > 50   # it learned: a broken loop cannot match by being constant


def test_the_comparison_is_not_blind():
    golden = json.loads(GOLDEN.read_text())["metrics"]
    changed = json.loads(json.dumps(golden))
    changed["history"][-1]["train_loss"] *= 1.001
    with pytest.raises(AssertionError):
        _close(changed, golden)
