"""A GPU user's first steps, tried on CPU: the generated ImageNet launch script (first run and rerun
under torchrun), a multi-rank user error (one line, every rank status 2), Ctrl-C (one line saying
what was kept), and a failed data check (no empty --out left behind)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_imagefolder
from rubik.paper import launch_commands, launch_script

ROOT = Path(__file__).resolve().parents[1]
# a launch line's size for CPU: ~30 px inputs, one epoch of 2 steps per rank, no loader workers
SMALL = "--epochs 1 --batch-size 2 --base-resolution 64 --device cpu --workers 0 --threads 1 --quiet"


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    """A 2-class "ImageNet" of 8 train / 2 val 24 px JPEGs per class."""
    return make_imagefolder(tmp_path_factory.mktemp("fake_imagenet"), classes=2, per_class=(8, 2), size=24)


def _env(tmp_path):
    bin_dir = str(Path(sys.executable).parent)   # the script calls `torchrun` from PATH
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1",
            "RUBIK_CACHE_DIR": str(tmp_path / "cache")}


def _torchrun(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "rubik",
            *args]


def _error_lines(text):
    return [ln for ln in text.splitlines() if "error" in ln.lower() or "Traceback" in ln]


def test_launch_commands_resume_if_present():
    cmds = launch_commands(["tinynet_a", "resnet50"], nproc_per_node=4, extra="--workers 12")
    assert all(c.endswith("--resume auto --workers 12") for c in cmds.command)
    text = launch_script(cmds)
    assert text.startswith("#!/bin/sh\n") and "set -e" in text and text.count("torchrun") == 2
    # the committed copy is the one the current code writes (notebook 06's defaults)
    committed = Path(__file__).resolve().parents[1] / "data/results/imagenette/imagenet_launch.sh"
    models = [ln.split("--model ")[1].split()[0] for ln in committed.read_text().splitlines() if "torchrun" in ln]
    assert committed.read_text() == launch_script(launch_commands(models))


@pytest.mark.slow
def test_launch_script_first_run_and_rerun_under_torchrun(fake_imagenet, tmp_path):
    """The generated script, as written, on a fake ImageNet with 2 gloo ranks: the first run trains
    every model; a rerun after a "kill" (the second run's result gone, its checkpoint kept) finishes
    it without training the first again."""
    models = ["tinynet_e", "ghostnet_a"]
    cmds = launch_commands(models, data=str(fake_imagenet), nproc_per_node=2, out_root=str(tmp_path / "runs"),
                           extra=SMALL)
    script = tmp_path / "imagenet_launch.sh"
    script.write_text(launch_script(cmds))
    p = subprocess.run(["sh", str(script)], env=_env(tmp_path), capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for m in models:
        assert json.loads((tmp_path / "runs" / m / "result.json").read_text())["status"] == "done"
    first = (tmp_path / "runs" / models[0] / "checkpoint.pt").stat().st_mtime_ns
    (tmp_path / "runs" / models[1] / "result.json").unlink()   # killed after its last checkpoint
    p = subprocess.run(["sh", str(script)], env=_env(tmp_path), capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "runs" / models[1] / "result.json").is_file()
    assert (tmp_path / "runs" / models[0] / "checkpoint.pt").stat().st_mtime_ns == first   # not retrained
    assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_multi_rank_user_error_is_one_line_status_2(fake_imagenet, tmp_path):
    """A rerun into a finished folder without --resume under torchrun: rank 0 refuses, every rank
    stops before its first collective with status 2, and the refusal is printed once."""
    out = tmp_path / "run"
    args = ["train", "--model", "tinynet_e", "--data", str(fake_imagenet), "--dataset", "imagenet",
            *SMALL.split(), "--out", str(out)]
    p = subprocess.run(_torchrun(*args), env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    p = subprocess.run(_torchrun(*args), env=_env(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    refusals = [ln for ln in p.stderr.splitlines() if ln.startswith("rubik train: error:")]
    assert len(refusals) == 1 and "holds a finished run" in refusals[0], p.stderr[-3000:]
    assert "rubik/" not in p.stderr, p.stderr[-3000:]   # no traceback of ours (torchrun adds its summary)
    codes = [int(ln.split(":")[1].split()[0]) for ln in p.stderr.splitlines() if ln.strip().startswith("exitcode")]
    # every rank exits 2 (a rank still closing when torchrun saw the first exit may get its SIGTERM)
    assert codes and codes[-1] == 2 and set(codes) <= {2, -15}, p.stderr[-3000:]


def _interrupt_after(cmd, marker: Path, env, cwd, timeout=300):
    """Start ``cmd``, wait until ``marker`` exists, send SIGINT as a terminal's Ctrl-C would (to the
    process group), and return (status, stderr)."""
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    t0 = time.time()
    while not marker.exists():
        if p.poll() is not None or time.time() - t0 > timeout:
            out, err = p.communicate()
            raise AssertionError(f"ended before {marker} appeared: {err[-3000:]}")
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, err


@pytest.mark.slow
def test_ctrl_c_in_train_is_one_line(tiny_imagefolder, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rubik", "train", "--twist", "0.5", "0.25", "0.25", "--base-resolution", "64",
           "--data", str(tiny_imagefolder), "--recipe", "smoke", "--epochs", "500", "--batch-size", "4",
           "--workers", "0", "--threads", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    rc, err = _interrupt_after(cmd, out / "checkpoint.pt", _env(tmp_path), tmp_path)
    assert rc == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("rubik train: interrupted:"), err
    assert "checkpoint.pt keeps epoch" in lines[0] and "--resume" in lines[0]


@pytest.mark.slow
def test_ctrl_c_in_sweep_run_is_one_line(tmp_path):
    """Two local workers (spawned processes) in long fake trials; Ctrl-C reaches the whole group."""
    from test_sweep import TEMPLATE, _samples
    from rubik.sweep import init_sweep

    d = tmp_path / "sweep"
    init_sweep(d, _samples(3), TEMPLATE, latency=False)
    log = tmp_path / "fake.log"
    env = {**_env(tmp_path), "RUBIK_FAKE_SLEEP": "60", "RUBIK_FAKE_LOG": str(log)}
    cmd = [sys.executable, "-m", "rubik", "sweep", "run", str(d), "--processes", "2", "--no-progress",
           "--train-fn", "tests.test_sweep:fake_train"]
    rc, err = _interrupt_after(cmd, log, env, ROOT)
    assert rc == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("rubik sweep run: interrupted:"), err
    assert f"rubik sweep run {d}" in lines[0]


def test_failed_data_check_leaves_no_empty_out(tmp_path, capsys):
    from rubik.cli import main

    data = make_imagefolder(tmp_path / "one_class", classes=1, per_class=(2, 2), size=16)
    out = tmp_path / "runs" / "x"
    assert main(["train", "--data", str(data), "--out", str(out), "--quiet", "--device", "cpu"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert not out.exists()
