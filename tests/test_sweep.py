import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rubik import jobqueue as Q
from rubik import launcher as L
from rubik import sweep as S
from rubik import rundir as RD

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- a fake, fast trainer

def twist_of(cfg: dict) -> list:
    """The dials a trial config trains: its Arch's (a row no model fits keeps ``twist`` as written)."""
    return cfg["arch"]["twist"] if "arch" in cfg else cfg["twist"]


def fake_train(cfg: dict) -> dict:
    """Logs start/end lines (O_APPEND) to $RUBIK_FAKE_LOG, sleeps $RUBIK_FAKE_SLEEP, fails on r=0.13."""
    key = ",".join(f"{x:g}" for x in twist_of(cfg))
    log = os.environ.get("RUBIK_FAKE_LOG")

    def note(what):
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{what} {key} {os.getpid()}\n".encode())
            os.close(fd)

    note("start")
    time.sleep(float(os.environ.get("RUBIK_FAKE_SLEEP", "0")))
    if twist_of(cfg)[0] == 0.13:
        raise RuntimeError("boom")
    note("end")
    r, d, w = twist_of(cfg)
    return {"top1": 50 + 10 * r + 5 * d + 2 * w, "top5": 90.0, "ema_top1": 49.0, "history": [{"epoch": 0}]}


def _samples(n, bad=()):
    rows = [dict(id=f"r{i:03d}", kind="random", base="efficientnet_b0", base_resolution=64,
                 r=0.13 if i in bad else round(0.5 + i / 100, 3), d=0.9, w=0.8, resolution=40,
                 flops=1000 + i, flops_ratio=0.5) for i in range(n)]
    return pd.DataFrame(rows)


TEMPLATE = {"model": "efficientnet_b0", "twist": None, "base_resolution": None, "data": {"root": None},
            "recipe": "smoke", "epochs": 1, "seed": 7, "device": "cpu", "threads": None, "out_dir": None,
            "resume": False, "progress": False}


def _log_lines(path):
    return Path(path).read_text().split() if Path(path).exists() else []


def _counts(path, what):
    lines = [ln.split() for ln in Path(path).read_text().splitlines()] if Path(path).exists() else []
    out = {}
    for w, key, _ in lines:
        if w == what:
            out[key] = out.get(key, 0) + 1
    return out


@pytest.fixture()
def fake_env(tmp_path, monkeypatch):
    log = tmp_path / "fake.log"
    monkeypatch.setenv("RUBIK_FAKE_LOG", str(log))
    monkeypatch.setenv("RUBIK_FAKE_SLEEP", "0")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return log, env


# ----------------------------------------------------------------------------- store, records, resume

def test_init_run_resume_in_process(tmp_path, fake_env):
    log, _ = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(5), TEMPLATE)
    df0 = S.load_results(d)
    assert list(df0.status) == ["pending"] * 5 and df0.top1.isna().all()
    df = L.run_sweep(d, train_fn=fake_train, progress=False)
    assert (df.status == "done").all() and df.top1.notna().all()
    rec = json.loads((d / "trials" / "r002.json").read_text())
    assert rec["status"] == "done" and rec["config"]["arch"]["twist"] == [0.52, 0.9, 0.8]
    assert rec["config"]["arch"]["base_resolution"] == 64 and rec["seed"] == 7 and rec["code_version"]
    assert rec["sample"]["flops"] == 1002 and rec["time_s"] >= 0 and rec["metrics"]["history"]
    assert not list((d / "claims").glob("*.claim"))
    n_lines = len(_log_lines(log))
    L.run_sweep(d, train_fn=fake_train, progress=False)  # nothing left: no training
    assert len(_log_lines(log)) == n_lines
    assert S.sweep_status(d) == dict(total=5, done=5, failed=0, diverged=0, corrupt=0, mismatch=0, running=0, stale=0,
                                     left=0)
    # re-init with the same spec is a no-op; a different one is refused
    S.init_sweep(d, _samples(5), TEMPLATE)
    with pytest.raises(ValueError, match="exists with different"):
        S.init_sweep(d, _samples(6), TEMPLATE)
    with pytest.raises(ValueError, match="finished trial"):
        S.init_sweep(d, _samples(6), TEMPLATE, force=True)


def test_failed_trials_recorded_and_retried_on_request(tmp_path, fake_env):
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3, bad=(1,)), TEMPLATE)
    df = L.run_sweep(d, train_fn=fake_train, progress=False)
    assert list(df.status) == ["done", "failed", "done"]
    assert "boom" in df.error[1]
    assert L.run_worker(d, train_fn=fake_train) == []            # failed is not retried by default
    assert L.run_worker(d, train_fn=fake_train, retry_failed=True) == ["r001"]  # once per run


def test_trials_stopped_by_a_setup_error_run_once_it_is_fixed(tmp_path, monkeypatch):
    """A trial whose training cannot start because the data is not found leaves no record (the
    worker stops with the one-line error), so the next run, after the user set the data path,
    trains it; a trial that failed on its own is a result and is not retried."""
    from rubik.data import DataError

    def train_needs_data(cfg):
        if twist_of(cfg)[0] == 0.13:
            raise RuntimeError("boom")
        if not os.environ.get("RUBIK_TEST_DATA"):
            raise DataError("no data root given: set RUBIK_DATA_DIR")
        return {"top1": 50.0}

    monkeypatch.delenv("RUBIK_TEST_DATA", raising=False)
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3, bad=(1,)), TEMPLATE)
    with pytest.raises(DataError, match="no data root"):
        L.run_sweep(d, train_fn=train_needs_data, progress=False)
    assert list(S.load_results(d).status) == ["pending"] * 3
    monkeypatch.setenv("RUBIK_TEST_DATA", "1")
    df = L.run_sweep(d, train_fn=train_needs_data, progress=False)
    assert list(df.status) == ["done", "failed", "done"] and "boom" in df.error[1]
    assert L.run_worker(d, train_fn=train_needs_data) == []


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="not a sweep directory"):
        S.load_results(tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        S.init_sweep(tmp_path / "x", pd.concat([_samples(2), _samples(1)]), TEMPLATE)
    with pytest.raises(ValueError, match="no samples"):
        S.init_sweep(tmp_path / "x", _samples(0), TEMPLATE)
    S.init_sweep(tmp_path / "y", _samples(1), TEMPLATE)
    with pytest.raises(ValueError, match="worker"):
        L.run_worker(tmp_path / "y", worker=2, workers=2, train_fn=fake_train)


# ----------------------------------------------------------------------------- claims

def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_claims_exclusive_and_stale_recovery(tmp_path):
    S.init_sweep(tmp_path, _samples(1), TEMPLATE)
    c = Q.try_claim(tmp_path, "r000", heartbeat=0)
    assert c is not None and Q.try_claim(tmp_path, "r000", heartbeat=0) is None  # our own live pid
    c.release()
    assert not (tmp_path / "claims" / "r000.claim").exists()
    path = tmp_path / "claims" / "r000.claim"
    info = Q._claim_info(0)
    # a dead local process: stale, taken over
    path.write_text(json.dumps(dict(info, pid=_dead_pid(), pid_start=None)))
    assert Q.claim_state(path) == "stale"
    c = Q.try_claim(tmp_path, "r000", heartbeat=0)
    assert c is not None and json.loads(path.read_text())["pid"] == os.getpid()
    c.release()
    # another host: live until its heartbeat is older than stale_after
    path.write_text(json.dumps(dict(info, host="elsewhere", pid=1)))
    assert Q.claim_state(path) == "live" and Q.try_claim(tmp_path, "r000", heartbeat=0) is None
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert Q.claim_state(path, stale_after=600) == "stale"
    assert Q.claim_state(path, stale_after=None) == "live"
    assert Q.try_claim(tmp_path, "r000", heartbeat=0) is not None


def test_two_concurrent_workers_no_duplicates(tmp_path, fake_env):
    log, env = fake_env
    env["RUBIK_FAKE_SLEEP"] = "0.15"
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(12), TEMPLATE)
    cmd = [sys.executable, "-m", "rubik", "sweep", "run", str(d), "--train-fn", "tests.test_sweep:fake_train",
           "--no-progress", "--workers", "2"]
    procs = [subprocess.Popen(cmd + ["--worker", str(i)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ends = _counts(log, "end")
    assert len(ends) == 12 and set(ends.values()) == {1}, ends
    assert sum(_counts(log, "start").values()) == 12
    pids = {ln.split()[2] for ln in Path(log).read_text().splitlines()}
    assert len(pids) == 2  # both workers trained something
    df = S.load_results(d)
    assert (df.status == "done").all() and set(df.columns) >= {"top1", "time_s", "code_version"}


def test_local_processes(tmp_path, fake_env, monkeypatch):
    log, env = fake_env
    monkeypatch.setenv("RUBIK_FAKE_SLEEP", "0.1")
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(6), TEMPLATE)
    monkeypatch.syspath_prepend(str(ROOT))  # spawned children import tests.test_sweep
    df = L.run_sweep(d, processes=2, train_fn="tests.test_sweep:fake_train", progress=True, poll=0.2)
    assert (df.status == "done").all()
    ends = _counts(log, "end")
    assert len(ends) == 6 and set(ends.values()) == {1}


def oom_train(cfg: dict) -> dict:
    """As the kernel's out-of-memory killer would: SIGKILL for the trial with r = 0.5, else fake_train."""
    if twist_of(cfg)[0] == 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_train(cfg)


def test_a_worker_killed_by_signal_9_is_named_with_the_settings_that_lower_memory(tmp_path, fake_env, monkeypatch):
    """Issue 37.4: not "exited with [-9]": the likely cause and what lowers a worker's memory."""
    from rubik.errors import UserError

    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3), TEMPLATE)
    monkeypatch.syspath_prepend(str(ROOT))  # spawned children import tests.test_sweep
    with pytest.raises(UserError) as e:
        L.run_sweep(d, processes=2, train_fn="tests.test_sweep:oom_train", progress=False, poll=0.2, steal=False)
    msg = str(e.value)
    assert msg.startswith("1 sweep worker process(es) killed by signal 9 (out of memory?)"), msg
    assert "fewer --processes" in msg and "smaller --batch-size" in msg and "run again" in msg
    st = S.sweep_status(d)
    assert st["done"] == 1 and st["stale"] == 1 and not (d / "trials" / "r000.json").exists(), st   # runs again


def test_kill_and_resume(tmp_path, fake_env):
    log, env = fake_env
    env["RUBIK_FAKE_SLEEP"] = "0.6"
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(4), TEMPLATE)
    cmd = [sys.executable, "-m", "rubik", "sweep", "run", str(d), "--train-fn", "tests.test_sweep:fake_train",
           "--no-progress"]
    p = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.time() + 30
    while time.time() < deadline:  # wait for: one trial finished, the next one in flight
        if len(_counts(log, "end")) >= 1 and sum(_counts(log, "start").values()) >= 2:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    st = S.sweep_status(d)
    assert st["done"] >= 1 and st["done"] < 4 and st["stale"] == 1  # the in-flight claim is left behind
    r = subprocess.run(cmd, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0
    ends = _counts(log, "end")
    assert len(ends) == 4 and set(ends.values()) == {1}, ends  # every trial finished exactly once
    assert max(_counts(log, "start").values()) == 2            # only the killed one was started twice
    assert S.sweep_status(d)["done"] == 4 and not list((d / "claims").glob("*.claim"))
    out = subprocess.run([sys.executable, "-m", "rubik", "sweep", "status", str(d)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "4/4 done" in out.stdout


def test_env_worker(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(k, raising=False)
    assert L.env_worker() == (0, 1, None)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert L.env_worker()[:2] == (3, 8)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert L.env_worker() == (1, 4, 1)


# ----------------------------------------------------------------------------- the real thing, tiny

@pytest.mark.filterwarnings("ignore:giant phi")
def test_cli_real_train_end_to_end(tmp_path, tiny_imagefolder, cache_dir, capsys):
    """`rubik sweep init/run/status` with rubik.train on a 3-class 48 px ImageFolder (1 epoch)."""
    from rubik.cli import main

    d = tmp_path / "sw"
    assert main(["sweep", "init", str(d), "--n", "1", "--base-resolution", "26", "--data", str(tiny_imagefolder),
                 "--recipe", "smoke", "--epochs", "1", "--device", "cpu", "-p", 'data.pipeline="tensor"',
                 "-p", "recipe.label_smoothing=0.0", "-p", "recipe.eval_every=3",
                 "--ranges", "r=1.0:1.1,d=0.3:0.5,w=0.3:0.5", "--sample-seed", "1"]) == 0
    spec = S.load_spec(d)
    # recipe.KEY changes one field of the named recipe; the template spells the recipe out
    assert spec["template"]["recipe"]["name"] == "smoke"
    assert spec["template"]["recipe"]["label_smoothing"] == 0.0 and spec["template"]["recipe"]["eval_every"] == 3
    assert [t["kind"] for t in spec["trials"]] == ["base", "random"]  # giants would be < 24 px at 26
    assert spec["template"]["data"]["pipeline"] == "tensor" and spec["template"]["recipe"]["epochs"] == 1
    assert main(["sweep", "run", str(d), "--threads", "1", "--no-progress"]) == 0
    df = S.load_results(d)
    assert (df.status == "done").all(), df.error.tolist()
    assert df.top1.between(0, 100).all() and (df.resolution >= 24).all()
    rec = json.loads((d / "trials" / "r000.json").read_text())
    assert rec["config"]["arch"]["base_resolution"] == 26 and rec["metrics"]["epochs"] == 1
    # per-image outcomes on the whole val split, consistent with top-1, and scored on the two halves
    from rubik.data import split_top1, unpack_correct, val_split

    correct, labels = unpack_correct(rec["metrics"]["val_correct"])
    assert len(correct) == 12 and labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert 100 * correct.mean() == pytest.approx(rec["metrics"]["top1"])
    halves = val_split(labels)
    row = df.set_index("id").loc["r000"]
    assert row.top1_select == pytest.approx(100 * correct[halves["select"]].mean())
    assert row.top1_test == pytest.approx(split_top1(rec["metrics"]["val_correct"])["test"])
    assert set(S.load_correct(d)) == {"base", "r000"}
    assert rec["device_name"] and rec["code_version"]
    assert main(["sweep", "status", str(d)]) == 0
    assert "2/2 done" in capsys.readouterr().out
    # each finished trial keeps its final weights (runs/<id>/model.pt, weights_only-loadable), not the
    # optimizer's checkpoint; the record's config and fingerprint are those of a sweep without them
    from rubik.identity import config_fingerprint
    from rubik.rundir import load_torch_file

    assert rec["config"]["out_dir"] is None and rec["config"]["resume"] is False
    assert rec["fingerprint"] == config_fingerprint(S.trial_config(spec, spec["trials"][1], d))
    run_dir = d / "runs" / "r000"
    assert sorted(p.name for p in run_dir.iterdir() if p.suffix != ".lock") == \
        ["config.json", "metrics.jsonl", "model.pt", "result.json"]
    assert set(load_torch_file(run_dir / "model.pt")) == {"model", "ema", "config", "recipe", "epoch", "data"}
    # ... which `rubik validate --checkpoint` rebuilds and scores as the trial's last evaluation did
    assert main(["validate", "--checkpoint", str(run_dir / "model.pt"), "--data", str(tiny_imagefolder),
                 "--device", "cpu", "--workers", "0", "--quiet"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["top1"] == pytest.approx(rec["metrics"]["top1"]), scored
    # bad CLI inputs: a clear error and exit code 2, not a traceback
    assert main(["sweep", "init", str(tmp_path / "x"), "--base", "vgg16", "--data", str(tiny_imagefolder)]) == 2
    assert "unknown base model 'vgg16'" in capsys.readouterr().err
    assert main(["sweep", "status", str(tmp_path / "nothing")]) == 2
    assert main(["sweep", "init", str(tmp_path / "y"), "--data", str(tiny_imagefolder), "-p", "recipe.lr=1"]) == 2
    assert "unknown field 'lr'" in capsys.readouterr().err


def test_remaining_work_fits_time_against_flops():
    import pandas as pd

    df = pd.DataFrame(dict(status=["done", "done", "done", None, "failed"], flops=[1e6, 2e6, 4e6, 3e6, 8e6],
                           time_s=[20.0, 30.0, 50.0, None, None]))
    # time = 10 s + 10 s per MFLOP: 40 s for the 3 MFLOPs trial, 90 s clipped to the observed 50 s
    assert S.remaining_work(df) == pytest.approx(40.0 + 50.0)
    few = df.assign(flops=[1e6, 1e6, 1e6, 3e6, 8e6])       # no FLOPs spread: the mean time
    assert S.remaining_work(few) == pytest.approx(2 * 100.0 / 3)
    assert S.remaining_work(df[df.status == "done"]) == 0.0


def test_remaining_work_scales_with_each_trials_epochs():
    import pandas as pd

    # per epoch: 1 s + 1 s per MFLOP; the finished trials ran 10 or 20 epochs
    df = pd.DataFrame(dict(status=["done", "done", "done", None, None], flops=[1e6, 2e6, 4e6, 2e6, 4e6],
                           epochs=[10, 20, 10, 40, 80], time_s=[20.0, 60.0, 50.0, None, None]))
    assert S.remaining_work(df) == pytest.approx(40 * 3.0 + 80 * 5.0)
    # without the epochs column the same records predict from total time (the old estimate)
    assert S.remaining_work(df.drop(columns="epochs")) < 100.0


def device_train(cfg):
    """A train function that reports the device and threads its worker gave it."""
    fake_train(cfg)
    return {"top1": 1.0, "device": cfg["device"], "threads": cfg["threads"], "pid": os.getpid()}


def test_processes_share_a_device_each_trial_once(tmp_path, fake_env):
    """``rubik sweep run --device cpu --processes 3``: three workers on one device, every trial trained
    exactly once, the device and the default threads (cores / processes) given to each trial."""
    log, env = fake_env
    env["RUBIK_FAKE_SLEEP"] = "0.1"
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(9), dict(TEMPLATE, device="auto"))
    out = subprocess.run([sys.executable, "-m", "rubik", "sweep", "run", str(d), "--device", "cpu", "--processes", "3",
                          "--train-fn", "tests.test_sweep:device_train", "--no-progress"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    ends = _counts(log, "end")
    assert len(ends) == 9 and set(ends.values()) == {1}
    recs = [json.loads(f.read_text()) for f in (d / "trials").glob("*.json")]
    assert len(recs) == 9 and {r["status"] for r in recs} == {"done"}
    assert {r["metrics"]["device"] for r in recs} == {"cpu"}
    assert {r["metrics"]["threads"] for r in recs} == {max(1, (os.cpu_count() or 1) // 3)}


def test_auto_devices_spread_processes_over_gpus(monkeypatch):
    import torch

    spec = {"template": {"device": "auto"}}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert L._auto_devices(spec, 4, "cuda") == ["cuda:0"] * 4          # four trials at once on one GPU
    assert L._auto_devices(spec, 1, None) is None                      # train() picks cuda:0 itself
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert L._auto_devices(spec, 5, None) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert L._auto_devices(spec, 2, "cpu") == ["cpu", "cpu"]
    assert L._auto_devices({"template": {"device": "cpu"}}, 3, None) is None
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert L._default_threads(["cuda:0"] * 12, 12) == 1 and L._default_threads(["cuda:0"] * 4, 4) == 2
    assert L._default_threads(None, 4) == 4 and L._default_threads(["cpu"] * 2, 2) == 8
    assert L._default_threads(None, 1) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(S.ConfigError, match="no CUDA device"):
        L._auto_devices(spec, 2, "cuda")
    with pytest.raises(S.ConfigError, match="no CUDA device"):
        L._auto_devices(spec, 2, "cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert L._auto_devices(spec, 2, "cuda:1") == ["cuda:1", "cuda:1"]
    with pytest.raises(S.ConfigError, match="has 2 CUDA device"):
        L._auto_devices(spec, 2, "cuda:2")


def test_the_imagenet100_presets_processes_are_one_per_gpu_present(tmp_path, monkeypatch):
    """Issue 37.3: `rubik reproduce --preset imagenet100` on 8 GPUs trains 8 trials at once (processes null)."""
    import torch

    from rubik.preset import load_preset

    cfg = load_preset("imagenet100")
    assert cfg["processes"] is None and cfg["device"] == "cuda" and cfg["trial_checkpoints"] is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    seen = {}

    def workers(d, worker, workers, processes, devices, options, bar, poll):   # what would be started
        seen.update(processes=processes, devices=devices)

    monkeypatch.setattr(L, "_run_local_workers", workers)
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), dict(TEMPLATE, device=cfg["device"]))
    L.run_sweep(d, processes=cfg["processes"], progress=False, wait=False)
    assert seen == {"processes": 8, "devices": [f"cuda:{k}" for k in range(8)]}
    assert L.default_processes("auto") == 8 and L.default_processes("cpu") == 1


def test_cli_sweep_run_device_cuda_without_cuda_is_one_line(tmp_path, monkeypatch, capsys):
    import torch

    from rubik import cli

    S.init_sweep(tmp_path, _samples(2), TEMPLATE)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert cli.main(["sweep", "run", str(tmp_path), "--device", "cuda", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rubik sweep run: error: --device cuda: no CUDA device") and "\n" not in err
    assert "Traceback" not in err and not list((tmp_path / "trials").glob("*.json"))


def test_trial_rows_may_set_their_own_epochs_and_seed():
    spec = {"template": dict(TEMPLATE), "trial_checkpoints": False}
    base = dict(id="a", base="efficientnet_b0", r=1.0, d=1.0, w=1.0, base_resolution=64)
    # the epochs are the recipe's: the template's (stored beside the recipe, in the layout before arch)
    assert S.trial_epochs(S.trial_config(spec, base)) == 1 and S.trial_config(spec, base)["seed"] == 7
    cfg = S.trial_config(spec, dict(base, epochs=20.0, seed=2))
    assert cfg["recipe"]["epochs"] == 20 and cfg["seed"] == 2 and isinstance(cfg["recipe"]["epochs"], int)
    assert S.trial_epochs(S.trial_config(spec, dict(base, epochs=float("nan"), seed=None))) == 1   # NaN: the template's


def test_load_results_scores_halves_and_reads_old_records(tmp_path):
    """Records with per-image bits get top1_select/top1_test (hand-computed); old ones load with NaN."""
    import numpy as np

    from rubik.data import pack_correct, val_split

    labels = np.repeat([0, 1, 2], [5, 6, 7])
    correct = np.arange(18) % 3 == 0
    S.init_sweep(tmp_path, _samples(2), TEMPLATE)
    for tid, metrics in (("r000", {"top1": 33.3, "val_correct": pack_correct(correct, labels)}),
                         ("r001", {"top1": 40.0})):
        RD.atomic_write_json(tmp_path / "trials" / f"{tid}.json", {"id": tid, "status": "done", "metrics": metrics})
    df = S.load_results(tmp_path).set_index("id")
    sel, test = val_split(labels)["select"], val_split(labels)["test"]
    assert df.loc["r000", "top1_select"] == pytest.approx(100 * correct[sel].sum() / len(sel))
    assert df.loc["r000", "top1_test"] == pytest.approx(100 * correct[test].sum() / len(test))
    assert np.isnan(df.loc["r001", "top1_test"]) and df.loc["r001", "top1"] == 40.0
    assert list(S.load_correct(tmp_path)) == ["r000"]


def test_code_version_from_the_environment(monkeypatch):
    """A copy of the code without git (a rented GPU machine) names its commit through the environment."""
    monkeypatch.setenv("RUBIK_CODE_VERSION", "abc1234")
    assert S.code_version() == "abc1234"
    monkeypatch.delenv("RUBIK_CODE_VERSION")
    assert S.code_version() != "abc1234"


def test_order_short_first_takes_the_cheapest_trials_first(tmp_path, fake_env, capsys):
    """Cost = FLOPs x epochs (a trial's own epochs, else the template's); a deadline run takes the cheapest first."""
    from rubik import cli

    log, _ = fake_env
    samples = _samples(4)
    samples["flops"] = [4000, 1000, 3000, 1000]
    samples["epochs"] = [1, 5, 1, None]      # costs 4000, 5000, 3000, 1000 (template: 1 epoch)
    S.init_sweep(tmp_path, samples, TEMPLATE)
    spec = S.load_spec(tmp_path)
    assert S.trial_costs(spec) == {"r000": 4000, "r001": 5000, "r002": 3000, "r003": 1000}
    assert S.order_trials(spec) == ["r000", "r001", "r002", "r003"]
    assert S.order_trials(spec, "short-first") == ["r003", "r002", "r000", "r001"]
    assert S.order_trials(spec, "long-first") == ["r001", "r000", "r002", "r003"]
    with pytest.raises(S.ConfigError, match="unknown trial order 'fast'"):
        L.run_sweep(tmp_path, train_fn=fake_train, progress=False, order="fast")
    # a deadline after two trials: short-first has trained the two cheapest
    assert L.run_worker(tmp_path, train_fn=fake_train, order="short-first", max_trials=2) == ["r003", "r002"]
    started = [key for what, key, _ in (ln.split() for ln in log.read_text().splitlines()) if what == "start"]
    assert started == ["0.53,0.9,0.8", "0.52,0.9,0.8"]
    rc = cli.main(["sweep", "run", str(tmp_path), "--order", "long-first", "--no-progress",
                   "--train-fn", "tests.test_sweep:fake_train"])
    assert rc == 0 and "4 done" in capsys.readouterr().out
    started = [key for what, key, _ in (ln.split() for ln in log.read_text().splitlines()) if what == "start"]
    assert started[2:] == ["0.51,0.9,0.8", "0.5,0.9,0.8"]              # the rest, the longest first


def test_the_spec_names_its_head_size(tmp_path, tiny_imagefolder):
    """Issue 23: ``num_classes`` is written into sweep.json (from the sampling, else the data's class
    folders), so nothing solves it back from a parameter count."""
    from rubik.latency import sweep_num_classes

    S.init_sweep(tmp_path / "a", _samples(2), TEMPLATE, meta={"sampling": {"num_classes": 10}})
    assert S.load_spec(tmp_path / "a")["num_classes"] == 10
    tmpl = dict(TEMPLATE, data={"root": str(tiny_imagefolder)})
    S.init_sweep(tmp_path / "b", _samples(2), tmpl)
    spec = S.load_spec(tmp_path / "b")
    assert spec["num_classes"] == 3 == sweep_num_classes(spec)
    S.init_sweep(tmp_path / "c", _samples(2), TEMPLATE)     # no data here and no sampling: unknown
    assert S.load_spec(tmp_path / "c")["num_classes"] is None


def test_sweep_init_keeps_the_templates_convolution_in_every_trial(tmp_path, tiny_imagefolder, capsys):
    """Issue 35: `-p 'arch={..., "conv": "spconv"}'` (JSON) reached the template but every trial's arch said conv None,
    so the sweep would have trained dense networks with dense FLOPs in its table."""
    from rubik.cli import main
    from rubik.models import Arch

    d = tmp_path / "sp"
    assert main(["sweep", "init", str(d), "--n", "2", "--base", "resnet20", "--base-resolution", "32", "--data",
                 str(tiny_imagefolder), "--ranges", "r=0.9:1.0,d=1.0:1.0,w=0.5:1.0", "--no-references",
                 "-p", '{"base": "resnet20", "twist": [1, 1, 1], "base_resolution": 32, "conv": "spconv"}'.join(["arch=", ""])]) == 0, \
        capsys.readouterr().err
    spec = S.load_spec(d)
    assert Arch.from_dict(spec["template"]["arch"]).conv.kind == "spconv"
    for t in spec["trials"]:
        arch = Arch.from_dict(t["arch"])
        assert arch.conv is not None and arch.conv.kind == "spconv"
        assert t["flops"] == arch.flops(3) < arch.replace(conv=None).flops(3)   # SPConv's FLOPs, not dense ones
        assert Arch.from_dict(S.trial_config(spec, t)["arch"]).conv.kind == "spconv"
    # a template naming another base than --base is refused in one line
    assert main(["sweep", "init", str(tmp_path / "x"), "--base", "resnet20", "--data", str(tiny_imagefolder),
                 "-p", 'arch={"base": "resnet50", "twist": [1, 1, 1], "conv": "spconv"}']) == 2
    assert "differs from --base" in capsys.readouterr().err
