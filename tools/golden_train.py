"""A fixed-seed training whose metrics must not change under a refactor (issue 23's "behaviour unchanged").

    python tools/golden_train.py                       # this checkout's metrics, canonical JSON, to stdout
    python tools/golden_train.py --write tests/data/golden_train.json
    python tools/golden_train.py --compare 59a1b5c     # run it here and at another commit; byte-compare

The run goes through the ``rubik train`` command line (the interface a refactor keeps): a twisted
EfficientNet-B0 at base 32 px, the ``smoke`` recipe, 2 epochs, seed 0, one CPU thread, on a 3-class
folder of generated JPEGs written fresh into a temporary folder. What is compared is everything a
record keeps from it except wall-clock times: every epoch's line of ``metrics.jsonl`` (losses, lr,
accuracies) and ``result.json`` (params, FLOPs, resolution, per-image hits, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"epoch_time_s", "images_per_s", "train_time_s", "first_step_s"}
ARGS = ["--model", "efficientnet_b0", "--twist", "0.75", "0.5", "0.5", "--base-resolution", "32",
        "--dataset", "folder", "--recipe", "smoke", "--epochs", "2", "--batch-size", "8", "--seed", "0",
        "--device", "cpu", "--threads", "1", "--workers", "0", "--pipeline", "folder", "--quiet"]


def write_data(root: Path, classes: int = 3, per_class=(16, 8), size: int = 40) -> Path:
    """Class k is a coloured square on noise (learnable in two epochs); fixed seed, so fixed bytes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 40), (40, 60, 220)]
    for split, n in zip(("train", "val"), per_class):
        for c in range(classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
                y0, x0 = rng.integers(0, size // 3, size=2)
                img[y0:y0 + size // 2, x0:x0 + size // 2] = colours[c]
                Image.fromarray(img).save(d / f"img_{i:03d}.png")   # PNG: no codec in the loop
    return root


def run(checkout: Path, data: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "RUBIK_CACHE_DIR": str(out) + "_cache"}
    cmd = [sys.executable, "-m", "rubik", "train", *ARGS, "--data", str(data), "--out", str(out)]
    p = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"golden_train: {' '.join(cmd)} failed in {checkout}:\n{p.stderr[-2000:]}")
    history = [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
               for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result = {k: v for k, v in json.loads((out / "result.json").read_text()).items() if k not in TIMING_KEYS}
    return {"history": history, "result": result}


def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"torch": torch.__version__, "cpu": cpu}


def metrics(checkout: Path = REPO) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(Path(tmp) / "data")
        return run(checkout, data, Path(tmp) / "run")


def canonical(d: dict) -> str:
    return json.dumps(d, indent=1, sort_keys=True) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", help="write {machine, metrics} here")
    p.add_argument("--compare", metavar="COMMIT", help="also run at COMMIT (a temporary git worktree) and compare")
    a = p.parse_args(argv)
    mine = metrics()
    if a.write:
        Path(a.write).parent.mkdir(parents=True, exist_ok=True)
        Path(a.write).write_text(canonical({"machine": machine(), "metrics": mine}))
    if a.compare:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "old"
            subprocess.run(["git", "worktree", "add", "--detach", str(wt), a.compare], cwd=REPO, check=True,
                           capture_output=True)
            try:
                theirs = metrics(wt)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=REPO, capture_output=True)
        same = canonical(mine) == canonical(theirs)
        print(f"golden_train: metrics at {a.compare} and in this checkout are "
              f"{'byte-identical' if same else 'DIFFERENT'} ({len(canonical(mine))} bytes)")
        return 0 if same else 1
    if not a.write:
        sys.stdout.write(canonical(mine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
