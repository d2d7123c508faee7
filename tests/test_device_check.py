"""The GPU device check's parts, at CPU sizes: throughput script, study-slice bookkeeping, the shell driver."""
import importlib.util
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def bench(monkeypatch):
    """Import a script of benchmarks/ by name (as a module, so worker processes can pickle its functions)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module


def test_gpu_throughput_quick_on_cpu(tmp_path, bench):
    tp = bench("gpu_throughput")
    out = tmp_path / "tp.json"
    with pytest.warns(RuntimeWarning, match="'gpu_jpeg' needs a CUDA device"):
        rc = tp.main(["--quick", "--device", "cpu", "--models", "tinynet_e", "--kinds", "synthetic,tensor,gpu_jpeg",
                      "--workers", "0", "--jpeg-images", "16", "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and res["device"] == "cpu" and res["gpu"] is None
    rows = {r["kind"]: r for r in res["rows"]}
    assert set(rows) == {"synthetic", "tensor", "gpu_jpeg"}
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 and r["resolution"] == 32 for r in rows.values())
    assert rows["gpu_jpeg"]["pipeline_used"] == "folder"          # no CUDA: the fallback ran, and says so
    assert res["ratios"]["tinynet_e"]["tensor/synthetic"] == pytest.approx(
        rows["tensor"]["images_per_s"] / rows["synthetic"]["images_per_s"], rel=1e-2)


def test_gpu_throughput_rows_measure_every_pipeline_on_the_first_model_first(bench):
    tp = bench("gpu_throughput")
    rows = [(r["model"], r["kind"]) for r in tp.plan_rows(["tinynet_e", "efficientnet_b0", "ghostnet_a"],
                                                          tp.KIND_ORDER, compile_models=["tinynet_e"])]
    assert rows[:6] == [("tinynet_e", k) for k in ("synthetic", "tensor", "gpu_jpeg", "folder", "compiled", "timm")]
    assert rows[6:9] == [("efficientnet_b0", "synthetic"), ("ghostnet_a", "synthetic"), ("efficientnet_b0", "timm")]
    assert len(rows) == len(set(rows)) == 6 + 2 * 4 + 1      # no timm GhostNet-A, compiled for TinyNet-E only
    assert [r["kind"] for r in tp.plan_rows(["efficientnet_b0"], ["tensor", "synthetic"])] == ["synthetic", "tensor"]


def test_study_slice_picks_and_compares(tmp_path, bench):
    from rubik.rundir import atomic_write_json
    from rubik.sweep import init_sweep

    sl = bench("study_slice")
    trials = [{"id": f"t{i}", "base": "efficientnet_b0", "r": 1.0, "d": 1.0, "w": 1.0, "flops": 10 * (i + 1),
               "resolution": 64} for i in range(9)]
    picked = sl.pick_trials(trials, 3)
    assert [t["id"] for t in picked] == ["t0", "t4", "t8"]
    assert [t["id"] for t in sl.pick_trials(trials, 2, smallest=True)] == ["t0", "t1"]
    committed, new = tmp_path / "committed", tmp_path / "new"
    for t in trials:
        atomic_write_json(committed / "trials" / f"{t['id']}.json",
                          {"id": t["id"], "status": "done", "metrics": {"top1": 50.0}, "time_s": 100.0})
    init_sweep(new, picked, {"device": "cpu"})
    for t, top1 in zip(picked[:2], (51.0, 53.0)):   # the third never finished
        atomic_write_json(new / "trials" / f"{t['id']}.json",
                          {"id": t["id"], "status": "done", "metrics": {"top1": top1}, "time_s": 5.0})
    out = sl.compare(committed, new, wall_s=10.0, n_all=9, flops_all=450.0)
    assert out["done"] == 2 and out["trials"] == 3
    assert out["mean_diff"] == pytest.approx(2.0) and out["sd_diff"] == pytest.approx(math.sqrt(2))
    assert out["projected_all_s_by_count"] == pytest.approx(10.0 * 9 / 2)
    assert out["projected_all_s_by_flops"] == pytest.approx(10.0 * 450 / (10 + 50))
    assert out["pair_noise_sd"] == pytest.approx(math.sqrt(2) * 1.65)


def test_device_check_script_parses_and_rejects_unknown_options():
    script = ROOT / "benchmarks" / "device_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    r = subprocess.run(["bash", str(script), "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown argument '--frobnicate'" in r.stderr
    r = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--budget-s" in r.stdout


def test_device_check_processes_option_and_rubik_processes_default(tmp_path):
    script = ROOT / "benchmarks" / "device_check.sh"
    r = subprocess.run(["bash", str(script), "--processes", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--processes / RUBIK_PROCESSES must be a positive integer" in r.stderr
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env={**os.environ, "RUBIK_PROCESSES": "x"})
    assert r.returncode == 2 and "got 'x'" in r.stderr
    # device_study.sh: --processes, else $RUBIK_PROCESSES, else 12; a plain PROCESSES variable is ignored
    study = tmp_path / "study"
    (study / "trials").mkdir(parents=True)
    (study / "sweep.json").write_text("{}")
    (tmp_path / "study.cached").touch()
    fake = tmp_path / "fake_python"
    fake.write_text('#!/bin/sh\necho "ARGS: $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "RUBIK_RESULTS_DIR": str(tmp_path), "RUBIK_STAGE_LIMIT_S": "100",
           "PROCESSES": "3"}
    study_sh = ROOT / "benchmarks" / "device_study.sh"

    def sweep_args(*extra, **more_env):
        out = subprocess.run(["bash", str(study_sh), str(study), *extra], capture_output=True, text=True,
                             env={**env, **more_env}).stdout
        return next(line for line in out.splitlines() if "sweep run" in line and line.startswith("ARGS"))

    assert "--processes 12 --order short-first " in sweep_args()
    assert "--order spec " in sweep_args("--order", "spec")
    assert "--processes 7 " in sweep_args(RUBIK_PROCESSES="7")
    assert "--processes 5 " in sweep_args("--processes", "5", RUBIK_PROCESSES="7")


def test_step_ops_counts_kernels_not_views_and_a_foreach_op_once(bench):
    import torch

    so = bench("step_ops")
    ts = [torch.ones(3) for _ in range(5)]
    assert so.count_ops(lambda: torch._foreach_add_(ts, 1.0))["compute"] == 1      # one launch on CUDA
    assert so.count_ops(lambda: [t.add_(1.0) for t in ts])["compute"] == 5
    assert so.count_ops(lambda: ts[0].view(3, 1).t())["compute"] == 0
