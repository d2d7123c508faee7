"""What a kill, a full or read-only disk, a second writer, a divergence and a wrong input do to runs
and sweeps: the guarantees of the README's "Guarantees" section, one group of tests per guarantee.

Faults are injected at exact points: ``rubik.rundir._write`` (every file write) is patched to raise
``OSError(ENOSPC / EROFS)`` (the tests run as root, which ignores chmod), kills are real SIGKILLs of
subprocesses or exceptions raised inside the writer.
"""
import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import rubik.rundir as RD
import rubik.train as T
from rubik import jobqueue as Q
from rubik import launcher as L
from rubik import sweep as S
from rubik.cli import main as cli_main
from rubik.errors import ConfigError, RunDirError
from rubik.train import Recipe, train
from tests.conftest import make_imagefolder
from tests.test_sweep import TEMPLATE, _counts, _samples, fake_env, fake_train  # noqa: F401 (fixture)
from tests.test_train import tiny_cfg

ROOT = Path(__file__).resolve().parents[1]


def _strict_json(text):
    """json.loads that rejects NaN / Infinity tokens, as strict parsers do."""
    def reject(tok):
        raise ValueError(f"non-JSON token {tok}")
    return json.loads(text, parse_constant=reject)


def _one_line_error(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rubik {command}: error: "), err
    return err[0]


def _spawn_holder(lock_path, seconds=60):
    """Another process (a live pid of this host) holding the lock file ``lock_path``."""
    code = ("import sys, time; from rubik.rundir import acquire; "
            f"l = acquire({str(lock_path)!r}, heartbeat=0); print('held' if l else 'busy', flush=True); "
            f"time.sleep({seconds})")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.fixture()
def run_cfg(tiny_imagefolder, cache_dir, tmp_path):
    return tiny_cfg(tiny_imagefolder, epochs=1, out_dir=str(tmp_path / "run"))


# ----------------------------------------------------------------------------- 1. a run is never overwritten

def test_train_refuses_a_folder_holding_a_run(run_cfg):
    out = Path(run_cfg.out_dir)
    train(run_cfg)
    before = {n: (out / n).read_bytes() for n in ("checkpoint.pt", "metrics.jsonl", "result.json")}
    with pytest.raises(RunDirError, match="holds a finished run.*--resume.*--overwrite"):
        train(run_cfg)
    assert {n: (out / n).read_bytes() for n in before} == before          # untouched
    res = train(dataclasses.replace(run_cfg, overwrite=True))              # explicit: replaced
    assert res["status"] == "done" and len(res["history"]) == 1


def test_resume_without_checkpoint_is_an_error_before_any_data(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = cli_main(["train", "--data", str(tmp_path / "no-such-data"), "--out", str(tmp_path / "empty"),
                   "--resume", "--quiet"])
    assert rc == 2 and "no checkpoint.pt" in _one_line_error(capsys, "train")   # not the data error


# ----------------------------------------------------------------------------- 2. one writer per run folder

def test_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(run_cfg):
    out = Path(run_cfg.out_dir)
    out.mkdir(parents=True)
    holder = _spawn_holder(out / "run.lock")
    try:
        with pytest.raises(RunDirError, match=f"in use by another training \\(pid {holder.pid}"):
            train(run_cfg)
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert train(run_cfg)["status"] == "done"        # the killed holder's lock is stale: taken over
    assert not (out / "run.lock").exists()           # released at the end


def test_two_concurrent_trainings_into_one_folder(tiny_imagefolder, cache_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rubik", "train", "--model", "efficientnet_b0", "--twist", "0.5", "0.25", "0.25",
           "--base-resolution", "64", "--data", str(tiny_imagefolder), "--pipeline", "tensor", "--workers", "0",
           "--recipe", "smoke", "--epochs", "3", "--batch-size", "8", "--threads", "1", "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    rcs = sorted(p.returncode for p in procs)
    assert rcs == [0, 2], outs                                   # one trains, the other is refused
    err = next(e for p, (_, e) in zip(procs, outs) if p.returncode == 2)
    assert "in use by another training" in err or "holds a" in err, err
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3]       # one run's lines, not interleaved


# ----------------------------------------------------------------------------- 3. claims are valid when they exist

def test_empty_claim_is_stale_at_once_and_the_run_finishes_every_trial(tmp_path, fake_env):
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3), TEMPLATE)
    (d / "claims" / "r001.claim").write_text("")           # a torn claim (SIGKILL or full disk, old code)
    assert Q.claim_state(d / "claims" / "r001.claim") == "stale"
    df = L.run_sweep(d, train_fn=fake_train, progress=False)
    assert list(df.status) == ["done"] * 3


def test_claim_is_complete_the_moment_it_exists(tmp_path, monkeypatch):
    S.init_sweep(tmp_path, _samples(1), TEMPLATE)

    def killed(src, dst):
        raise KeyboardInterrupt("killed between writing the claim and linking it")

    monkeypatch.setattr(os, "link", killed)
    with pytest.raises(KeyboardInterrupt):
        Q.try_claim(tmp_path, "r000", heartbeat=0)
    assert not list((tmp_path / "claims").iterdir())       # no claim, and no temp file left either


def test_sweep_run_waits_for_trials_held_elsewhere_and_never_reports_them_done(tmp_path, fake_env, capsys):
    log, env = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3), TEMPLATE)
    holder = _spawn_holder(d / "claims" / "r001.claim")
    try:
        rc = cli_main(["sweep", "run", str(d), "--train-fn", "tests.test_sweep:fake_train", "--no-progress",
                       "--no-wait"])
        assert rc == 2 and "1 trial(s) not finished (r001)" in _one_line_error(capsys, "sweep run")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    df = L.run_sweep(d, train_fn=fake_train, progress=False, poll=0.1)   # the holder died: taken over
    assert list(df.status) == ["done"] * 3


# ----------------------------------------------------------------------------- 4. divergence and strict JSON

def test_huge_lr_stops_as_diverged_with_strict_json(run_cfg, capsys):
    cfg = run_cfg.with_recipe(lr_per_1024=1e12, epochs=3)
    res = train(cfg)
    assert res["status"] == "diverged" and len(res["history"]) == 1 and res["top1"] is None
    out = Path(cfg.out_dir)
    lines = [_strict_json(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["train_loss"] is None
    assert _strict_json((out / "result.json").read_text())["status"] == "diverged"
    assert "diverged" in capsys.readouterr().err


def diverging_train(cfg):
    if cfg["arch"]["twist"][0] > 0.505:
        return {"status": "diverged", "top1": 10.0, "train_time_s": float("nan"), "history": []}
    return fake_train(cfg)


def test_diverged_trials_are_recorded_listed_and_kept_out_of_frontiers(tmp_path, fake_env, capsys):
    from rubik.frontier import pareto_frontier

    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3), TEMPLATE)
    df = L.run_sweep(d, train_fn=diverging_train, progress=False)
    assert list(df.status) == ["done", "diverged", "diverged"]
    rec = _strict_json((d / "trials" / "r002.json").read_text())        # NaN written as null
    assert rec["status"] == "diverged" and rec["metrics"]["train_time_s"] is None
    assert S.sweep_status(d)["diverged"] == 2
    front = pareto_frontier(df[df.status == "done"], x="flops", y="top1")
    assert list(front.id) == ["r000"]
    assert L.run_worker(d, train_fn=fake_train) == []                  # a result: not trained again
    assert cli_main(["sweep", "status", str(d)]) == 0
    assert "diverged r001" in capsys.readouterr().out


@pytest.mark.parametrize("change, match", [
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(recipe=Recipe.named("smoke", ema_decay=1.5)), "ema_decay=1.5: must be < 1"),
    (dict(recipe=Recipe.named("smoke", lr_per_1024=float("nan"))), "lr_per_1024=nan"),
    (dict(recipe=Recipe.named("smoke", crop_scale=(0.5, 0.2))), "crop_scale"),
    (dict(model="nosuch_model"), "unknown model 'nosuch_model'"),
    (dict(twist=(0.1, 1, 1)), "rounds to 6 px"),
])
def test_bad_settings_are_rejected_before_any_data(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):   # a bad model: already when the config is made
        train(tiny_cfg(tmp_path / "no-such-data", out_dir=str(tmp_path / "run"), **change))
    assert not (tmp_path / "run").exists()


def test_one_class_dataset_is_an_error(tmp_path, cache_dir):
    root = make_imagefolder(tmp_path / "one", classes=1, per_class=(4, 2))
    with pytest.raises(Exception, match="1 class folder.*at least 2"):
        train(tiny_cfg(root, epochs=1))


# ----------------------------------------------------------------------------- 5. errors: one line, early, work kept

@pytest.mark.parametrize("value", ["tvg_seeds=0,1", "tvg_seeds=[a, b]", "epochs=2.5", "epochs=0", "n_models=x",
                                   "tvg_match_flops=1", "tvg_phis=[7]", "tvg_tiny=giant", "recipe=[1]"])
def test_reproduce_type_checks_every_param_before_the_first_notebook(tmp_path, capsys, value):
    out = tmp_path / "run"
    t0 = time.perf_counter()
    assert cli_main(["reproduce", "--preset", "smoke", "--out", str(out), "-p", value]) == 2
    assert f"-p {value.split('=')[0]}=" in _one_line_error(capsys, "reproduce")
    assert not out.exists() and time.perf_counter() - t0 < 10     # no notebook ran


def test_corrupt_checkpoint_is_one_line_naming_the_file(run_cfg, capsys):
    out = Path(run_cfg.out_dir)
    out.mkdir(parents=True)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match=f"cannot read checkpoint {out / 'checkpoint.pt'}"):
        train(dataclasses.replace(run_cfg, resume=True))
    assert cli_main(["train", "--data", "/nonexistent", "--out", str(out), "--resume"]) == 2
    assert "cannot read checkpoint" in _one_line_error(capsys, "train")


def _failing_writes(monkeypatch, code, when=lambda data: True):
    real = RD._write

    def write(f, data):
        if when(data):
            raise OSError(code, os.strerror(code))
        real(f, data)

    monkeypatch.setattr(RD, "_write", write)


def test_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(run_cfg, monkeypatch):
    cfg = run_cfg.with_recipe(epochs=2)
    real_save, saved = T.save_checkpoint, []

    def save_then_fill_disk(path, state):
        if saved:                                  # epoch 2: the disk is full now
            _failing_writes(monkeypatch, errno.ENOSPC)
        real_save(path, state)
        saved.append(state["epoch"])

    monkeypatch.setattr(T, "save_checkpoint", save_then_fill_disk)
    with pytest.raises(RunDirError, match=r"cannot write .*checkpoint.pt: No space left on device; the checkpoint "
                                          r"of epoch 1 is kept"):
        train(cfg)
    ck = torch.load(Path(cfg.out_dir) / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 1 and not list(Path(cfg.out_dir).glob("*.tmp"))


def test_read_only_sweep_fails_before_training(tmp_path, fake_env, monkeypatch):
    log, _ = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), TEMPLATE)
    _failing_writes(monkeypatch, errno.EROFS)
    with pytest.raises(RunDirError, match=r"cannot claim trial r000 in .*claims: Read-only file system"):
        L.run_sweep(d, train_fn=fake_train, progress=False)
    assert not _counts(log, "start")                                # nothing was trained


def test_full_sweep_dir_keeps_the_trained_result_and_the_next_run_moves_it_in(tmp_path, fake_env, cache_dir,
                                                                             monkeypatch):
    log, _ = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), TEMPLATE)
    monkeypatch.setattr(Q, "RECORD_RETRY_S", (0.0,))
    real = Q.atomic_write_json

    def full_trials_dir(path, obj, **kw):
        if Path(path).parent.name == "trials":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj, **kw)

    monkeypatch.setattr(Q, "atomic_write_json", full_trials_dir)
    with pytest.raises(RunDirError, match=r"trials/r000.json: No space left on device; the result of trial r000 "
                                          r"is kept in .*unsaved"):
        L.run_sweep(d, train_fn=fake_train, progress=False)
    monkeypatch.setattr(Q, "atomic_write_json", real)                 # space freed
    df = L.run_sweep(d, train_fn=fake_train, progress=False)
    assert list(df.status) == ["done", "done"]
    assert _counts(log, "start") == {"0.5,0.9,0.8": 1, "0.51,0.9,0.8": 1}     # r000 was not trained twice
    assert not list(Q.unsaved_dir().glob("*.json"))


# ----------------------------------------------------------------------------- 6. resume, orphans, tmp files, modes

def test_resume_with_other_settings_is_refused(run_cfg):
    train(run_cfg)
    with pytest.raises(RunDirError, match=r"other settings \(epochs 1 -> 3\)"):
        train(dataclasses.replace(run_cfg.with_recipe(epochs=3), resume=True))
    with pytest.raises(RunDirError, match=r"twist \[0.5, 0.25, 0.25\] -> \[0.5, 0.5, 0.25\]"):
        train(dataclasses.replace(run_cfg, arch=run_cfg.arch.replace(twist=(0.5, 0.5, 0.25)), resume=True))
    assert train(dataclasses.replace(run_cfg, resume=True))["status"] == "done"   # same settings: continues


def test_workers_die_with_a_killed_sweep_parent(tmp_path, fake_env):
    log, env = fake_env
    env["RUBIK_FAKE_SLEEP"] = "60"
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), TEMPLATE)
    parent = subprocess.Popen([sys.executable, "-m", "rubik", "sweep", "run", str(d), "--processes", "2",
                               "--train-fn", "tests.test_sweep:fake_train", "--no-progress"], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and sum(_counts(log, "start").values()) < 2:
            time.sleep(0.1)
        pids = [int(RD.read_lock(p)["pid"]) for p in (d / "claims").glob("*.claim")]
        assert len(pids) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(RD.pid_alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(RD.pid_alive(p) for p in pids)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_orphan_tmp_files_are_removed_on_the_next_start(tmp_path, fake_env):
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(1), TEMPLATE)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = d / "trials" / f".r000.json~{RD._HOST}~{dead.stdout.strip()}~1.tmp"
    legacy = d / "trials" / ".r000.json.abc123.tmp"                    # the old mkstemp names
    live = d / "trials" / f".r000.json~{RD._HOST}~{os.getpid()}~2.tmp"  # a writer still at work
    for p in (orphan, legacy, live):
        p.write_text("{")
    old = time.time() - 2 * RD.TMP_MAX_AGE_S
    os.utime(legacy, (old, old))
    L.run_sweep(d, train_fn=fake_train, progress=False)
    assert not orphan.exists() and not legacy.exists() and live.exists()


def test_records_and_checkpoints_follow_the_umask(tmp_path, fake_env, run_cfg):
    old = os.umask(0o022)
    try:
        d = tmp_path / "sw"
        S.init_sweep(d, _samples(1), TEMPLATE)
        L.run_sweep(d, train_fn=fake_train, progress=False)
        train(run_cfg)
    finally:
        os.umask(old)
    for p in (d / "trials" / "r000.json", d / "sweep.json", Path(run_cfg.out_dir) / "checkpoint.pt",
              Path(run_cfg.out_dir) / "result.json"):
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_status_and_load_results_agree_on_a_corrupt_record(tmp_path, fake_env, capsys):
    log, _ = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), TEMPLATE)
    L.run_sweep(d, train_fn=fake_train, progress=False)
    (d / "trials" / "r001.json").write_text('{"status": "do')
    st, df = S.sweep_status(d), S.load_results(d)
    assert st["corrupt"] == 1 and st["done"] == 1 and list(df.status) == ["done", "corrupt"]
    assert "r001.json: unreadable record" in df.error[1]
    assert cli_main(["sweep", "status", str(d)]) == 0
    assert "corrupt r001: " in capsys.readouterr().out
    df = L.run_sweep(d, train_fn=fake_train, progress=False)          # trained again, damaged file kept aside
    assert list(df.status) == ["done", "done"] and (d / "trials" / "r001.json.corrupt").exists()


# ----------------------------------------------------------------------------- every command: one-line errors

@pytest.mark.parametrize("argv, command, match", [
    (["train", "--model", "nosuch_model", "--data", "/nonexistent"], "train", "unknown model 'nosuch_model'"),
    (["train", "--recipe", "nosuch", "--data", "/nonexistent"], "train", "unknown recipe 'nosuch'"),
    (["train", "-o", "epochs=x", "--data", "/nonexistent"], "train", "-o epochs=x"),
    (["train", "-o", "ema_decay=x", "--data", "/nonexistent"], "train", "ema_decay='x'"),
    (["train", "-o", "nosuch=1", "--data", "/nonexistent"], "train", "unknown recipe field 'nosuch'"),
    (["train", "--epochs", "0", "--data", "/nonexistent"], "train", "epochs must be a positive integer"),
    (["train", "--batch-size", "0", "--data", "/nonexistent"], "train", "batch_size must be a positive integer"),
    (["train", "--data", "/nonexistent"], "train", "/nonexistent"),
    (["sweep", "init", "{tmp}/s", "--base", "nosuch", "--num-classes", "10"], "sweep init", "nosuch"),
    (["sweep", "init", "{tmp}/s", "-p", "nosuch=1", "--num-classes", "10"], "sweep init", "unknown field 'nosuch'"),
    (["sweep", "run", "{tmp}/nothing"], "sweep run", "not a sweep directory"),
    (["sweep", "status", "{tmp}/nothing"], "sweep status", "not a sweep directory"),
    (["reproduce", "--preset", "nosuch"], "reproduce", "unknown preset 'nosuch'"),
])
def test_every_command_reports_user_errors_in_one_line(tmp_path, capsys, argv, command, match):
    t0 = time.perf_counter()
    assert cli_main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert match in _one_line_error(capsys, command)
    assert time.perf_counter() - t0 < 10        # found before any expensive work


# ----------------------------------------------------------------------------- 7. records match their spec

def test_records_of_another_design_are_stale_listed_set_aside_and_retrained(tmp_path, fake_env, capsys):
    """Issue 25.1: ``sweep.json`` deleted and the folder re-initialised with another seed and epochs:
    the old records are not "done" results of the new design."""
    log, _ = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(3), TEMPLATE)
    L.run_sweep(d, train_fn=fake_train, progress=False)
    old = {p.name: p.read_bytes() for p in (d / "trials").glob("*.json")}
    assert all(json.loads(b)["fingerprint"] for b in old.values())
    (d / "sweep.json").unlink()
    other = dict(TEMPLATE, seed=8, epochs=2)
    with pytest.raises(ConfigError, match=r"holds 3 trial record\(s\) but no sweep.json.*--force"):
        S.init_sweep(d, _samples(3), other)
    assert cli_main(["sweep", "init", str(d), "--n", "2", "--num-classes", "10", "--no-latency"]) == 2
    assert "holds 3 trial record(s)" in _one_line_error(capsys, "sweep init")
    S.init_sweep(d, _samples(3), other, force=True)
    st = S.sweep_status(d)
    assert st["done"] == 0 and st["mismatch"] == 3, st
    df = S.load_results(d)
    assert list(df.status) == ["mismatch"] * 3 and df.top1.isna().all()
    assert "epochs 1 -> 2" in df.error[0] and "seed 7 -> 8" in df.error[0]
    assert cli_main(["sweep", "status", str(d)]) == 0
    out = capsys.readouterr().out
    assert "0/3 done" in out and "3 stale" in out and "mismatch r000: " in out
    df = L.run_sweep(d, train_fn=fake_train, progress=False)
    assert list(df.status) == ["done"] * 3
    assert _counts(log, "start") == {"0.5,0.9,0.8": 2, "0.51,0.9,0.8": 2, "0.52,0.9,0.8": 2}   # retrained
    assert {p.name[:-len(".stale")]: p.read_bytes() for p in (d / "trials").glob("*.json.stale")} == old  # kept
    assert json.loads((d / "trials" / "r000.json").read_text())["config"]["seed"] == 8


def test_edited_or_copied_records_are_not_counted(tmp_path, fake_env):
    a, b = tmp_path / "a", tmp_path / "b"
    S.init_sweep(a, _samples(2), TEMPLATE)
    S.init_sweep(b, _samples(2), dict(TEMPLATE, seed=9))
    L.run_sweep(a, train_fn=fake_train, progress=False)
    L.run_sweep(b, train_fn=fake_train, progress=False)
    rec = json.loads((a / "trials" / "r000.json").read_text())
    rec["config"]["arch"]["twist"] = [0.9, 0.9, 0.8]               # hand-edited to another twist
    (a / "trials" / "r000.json").write_text(json.dumps(rec))
    copied = json.loads((b / "trials" / "r001.json").read_text())
    copied["config"]["seed"] = 7                                   # another sweep's record, config made to fit
    (a / "trials" / "r001.json").write_text(json.dumps(copied))
    df = S.load_results(a)
    assert list(df.status) == ["mismatch", "mismatch"]
    assert "twist" in df.error[0] and "fingerprint" in df.error[1]
    assert S.load_correct(a) == {} and S.sweep_histories(a).empty


def test_committed_records_match_their_specs_with_or_without_fingerprints(tmp_path):
    """Records written before fingerprints are checked by the config they carry; later ones (e.g.
    data/results/spconv) by their fingerprint too, which must be their trial's under today's code
    (whatever layout the spec's template was stored in)."""
    from rubik.identity import config_fingerprint

    sweeps = sorted(p.parent for base in ("data/results", "runs/reference") for p in (ROOT / base).rglob("sweep.json"))
    assert len(sweeps) >= 12
    n = n_fp = 0
    for d in sweeps:
        st = S.sweep_status(d)
        assert st["mismatch"] == 0 and st["corrupt"] == 0, (d, st)
        spec = S.load_spec(d)
        trials = {str(t["id"]): t for t in spec["trials"]}
        for p in (d / "trials").glob("*.json"):
            rec = json.loads(p.read_text())
            assert isinstance(rec["config"], dict), p
            if "fingerprint" in rec:
                assert rec["fingerprint"] == config_fingerprint(S.trial_config(spec, trials[p.stem])), p
                n_fp += 1
            n += 1
    assert n >= 280 and n_fp >= 6
    import shutil

    d = tmp_path / "seed0"
    shutil.copytree(ROOT / "runs/reference/cpu/tiny_vs_giant/seed0", d)
    rec_path = sorted((d / "trials").glob("*.json"))[0]
    rec = json.loads(rec_path.read_text())
    rec["config"]["epochs"] = 99                                   # a field the old record carries
    rec_path.write_text(json.dumps(rec))
    st = S.sweep_status(d)
    assert st["mismatch"] == 1 and st["done"] == 3, st


# ----------------------------------------------------------------------------- 8. the tensor cache is verified

def test_a_cache_damaged_in_place_is_rebuilt_not_trained_on(tmp_path, cache_dir):
    """Issue 25.2: 20 kB of a cache file overwritten in place (same size: the zip still loads, its
    CRCs are not checked) is caught by the stored SHA-256 and rebuilt."""
    from rubik import data as D

    root = make_imagefolder(tmp_path / "ds", classes=2, per_class=(8, 2), size=40)
    cfg = D.DataConfig(root=str(root), pipeline="tensor", workers=0)
    good = D.tensor_cache(cfg, "train", 32, progress=False)
    [path] = cache_dir.glob("*_train_*.pt")
    raw = bytearray(path.read_bytes())
    start = len(raw) // 4
    raw[start:start + 20_000] = os.urandom(20_000)
    path.write_bytes(bytes(raw))
    assert len(raw) == path.stat().st_size
    with pytest.warns(UserWarning, match="does not match its SHA-256 digest"):
        again = D.tensor_cache(cfg, "train", 32, progress=False)
    assert torch.equal(again["x"], good["x"]) and torch.equal(again["y"], good["y"])
    assert torch.equal(torch.load(path, weights_only=True)["x"], good["x"])        # rewritten


# ----------------------------------------------------------------------------- 9. a real full disk

@pytest.fixture()
def small_tmpfs(tmp_path):
    """``mount(kib)``: a real tmpfs of that size (a file system that really fills up), unmounted after."""
    mounted = []

    def mount(kib):
        if os.geteuid() != 0:
            pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
        d = tmp_path / f"tmpfs_{kib}k_{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(d)], capture_output=True,
                           text=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): no real full disk to test")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_real_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(tiny_imagefolder, cache_dir,
                                                                                   small_tmpfs, capsys):
    """Issue 25.3: a 5 MiB tmpfs holds one 3.6 MB checkpoint but not the next one's temp file beside it:
    torch.save's own error (RuntimeError ... unexpected pos) must come out as the disk's."""
    out = small_tmpfs(5 * 1024) / "run"
    rc = cli_main(["train", "--data", str(tiny_imagefolder), "--pipeline", "tensor", "--workers", "0", "--twist",
                   "0.5", "0.25", "0.25", "--base-resolution", "64", "--recipe", "smoke", "--epochs", "2",
                   "--batch-size", "8", "--threads", "1", "--out", str(out), "--quiet"])
    line = _one_line_error(capsys, "train")
    assert rc == 2 and "checkpoint.pt: No space left on device; the checkpoint of epoch 1 is kept" in line, line
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert not list(out.glob("*.tmp"))


def test_real_full_disk_in_a_sweep_stops_the_worker_and_records_no_failure(tiny_imagefolder, cache_dir, small_tmpfs):
    import pandas as pd

    d = small_tmpfs(5 * 1024) / "sw"
    samples = pd.DataFrame([dict(id="t0", kind="random", base="efficientnet_b0", base_resolution=64, r=0.5, d=0.25,
                                 w=0.25)])
    cfg = tiny_cfg(tiny_imagefolder, epochs=2, threads=1).to_dict()
    S.init_sweep(d, samples, cfg, trial_checkpoints=True, latency=False)
    with pytest.raises(RunDirError, match=r"runs/t0/checkpoint.pt: No space left on device"):
        L.run_sweep(d, progress=False)
    assert not (d / "trials" / "t0.json").exists()          # not a "failed" result: retried once space is freed
    assert S.sweep_status(d)["left"] == 1


def test_real_full_cache_disk_trains_from_memory_with_a_warning(tiny_imagefolder, small_tmpfs, monkeypatch, tmp_path):
    monkeypatch.setenv("RUBIK_CACHE_DIR", str(small_tmpfs(64)))
    with pytest.warns(UserWarning, match=r"cannot write tensor cache .*No space left on device; training without it"):
        res = train(tiny_cfg(tiny_imagefolder, epochs=1, threads=1))
    assert res["status"] == "done"


# ----------------------------------------------------------------------------- 10. resume checks the data

def test_resume_after_the_class_folders_were_permuted_is_refused(tmp_path, cache_dir, monkeypatch, capsys):
    """Issue 25.4: killed after epoch 1, class folders swapped, --resume: the labels would be permuted."""
    root = make_imagefolder(tmp_path / "ds", classes=3, per_class=(6, 2))
    cfg = tiny_cfg(root, epochs=2, threads=1, out_dir=str(tmp_path / "run"))
    real = T.save_checkpoint

    def killed_after_epoch_1(path, state):
        real(path, state)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(T, "save_checkpoint", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(T, "save_checkpoint", real)
    for split in ("train", "val"):                       # class_0 <-> class_1: same names, other images
        s = root / split
        os.rename(s / "class_0", s / "tmp")
        os.rename(s / "class_1", s / "class_0")
        os.rename(s / "tmp", s / "class_1")
    with pytest.raises(RunDirError, match=r"trained on other data .*the train/ images changed \(18 -> 18 files"):
        train(dataclasses.replace(cfg, resume=True))
    (root / "train" / "class_3").mkdir()
    for i in range(2):
        (root / "train" / "class_1" / f"img_00{i}.jpg").rename(root / "train" / "class_3" / f"img_00{i}.jpg")
    (root / "val" / "class_3").mkdir()
    (root / "val" / "class_1" / "img_000.jpg").rename(root / "val" / "class_3" / "img_000.jpg")
    rc = cli_main(["train", "--data", str(root), "--twist", "0.5", "0.25", "0.25", "--base-resolution", "64",
                   "--recipe", "smoke", "--epochs", "2", "--batch-size", "8", "--pipeline", "tensor", "--workers", "0",
                   "--threads", "1", "--out", cfg.out_dir, "--resume", "--quiet"])
    assert rc == 2 and "the class list changed (3 -> 4 classes" in _one_line_error(capsys, "train")
    assert torch.load(Path(cfg.out_dir) / "checkpoint.pt", weights_only=False)["epoch"] == 1   # untouched


# ----------------------------------------------------------------------------- 11. claims and clocks

@pytest.mark.parametrize("processes", [1, 2])
def test_claim_from_a_host_with_a_future_clock_is_named_and_taken_over(tmp_path, fake_env, processes):
    """Issue 25.5: another host's claim whose file time is an hour ahead (its clock runs fast, or it died
    with it so) is judged by this machine's clock: named with its holder, taken over after --stale-after."""
    log, env = fake_env
    d = tmp_path / "sw"
    S.init_sweep(d, _samples(2), TEMPLATE)
    claim = d / "claims" / "r001.claim"
    claim.write_text(json.dumps({"host": "otherhost", "pid": 4242, "pid_start": 1, "time": "2026-12-06T05:00:00+00:00",
                                 "token": "otherhost:4242:1", "worker": 3}))
    future = time.time() + 3600
    os.utime(claim, (future, future))
    p = subprocess.run([sys.executable, "-m", "rubik", "sweep", "run", str(d), "--stale-after", "3", "--no-progress",
                        "--processes", str(processes), "--train-fn", "tests.test_sweep:fake_train"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "pid 4242 on otherhost since 2026-12-06T05:00:00+00:00" in p.stderr          # waited for, or taken over
    assert "waiting for trial r001, claimed by" in p.stderr or "took over trial r001 from" in p.stderr
    assert "in this machine's future" in p.stderr
    assert list(S.load_results(d).status) == ["done", "done"]


# ----------------------------------------------------------------------------- 12. leftovers

def test_a_cache_write_killed_midway_leaves_nothing_after_the_next_run(tmp_path, cache_dir, capsys):
    """Issue 25.6: SIGKILL while the tensor cache is written; the next cache use removes the temp file."""
    root = make_imagefolder(tmp_path / "ds", classes=2, per_class=(4, 2), size=40)
    code = ("import time, rubik.rundir as RD, rubik.data as D\n"
            "real = RD._write\n"
            "def slow(f, data):\n"
            "    real(f, data); f.flush(); time.sleep(60)\n"
            "RD._write = slow\n"
            f"D.tensor_cache(D.DataConfig(root={str(root)!r}, pipeline='tensor', workers=0), 'train', 32, "
            "progress=False)\n")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(cache_dir.glob(".*.tmp")):
            time.sleep(0.1)
        assert list(cache_dir.glob(".*.tmp")), "the writer never started"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert list(cache_dir.glob(".*.tmp")) and not list(cache_dir.glob("*.pt"))     # the leftover of the kill
    from rubik import data as D

    D.tensor_cache(D.DataConfig(root=str(root), pipeline="tensor", workers=0), "train", 32, progress=False)
    assert not list(cache_dir.glob(".*.tmp")) and len(list(cache_dir.glob("*.pt"))) == 1
    # the cache's size, and a way to prune what is no longer used
    [pt] = cache_dir.glob("*.pt")
    old = cache_dir / "imagenette_train_all_99-99px_0123456789abcdef.pt"
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    assert cli_main(["data", "cache"]) == 0
    out = capsys.readouterr().out
    assert f"{cache_dir}: 2 tensor cache file(s)" in out and old.name in out
    assert cli_main(["data", "cache", "--prune-days", "30"]) == 0
    assert "deleted 1 file(s) unused for 30 days" in capsys.readouterr().out
    assert not old.exists() and pt.exists()


# ----------------------------------------------------------------------------- 13. inputs that were tracebacks

@pytest.fixture()
def odd_inputs(tmp_path, fake_env):
    """A truncated sweep.json, a plain (non-study) sweep, a preset file with a typo, a text file posing as
    a checkpoint, a checkpoint of another model, and an ImageFolder holding a truncated JPEG."""
    trunc = tmp_path / "trunc"
    S.init_sweep(trunc, _samples(2), TEMPLATE)
    (trunc / "sweep.json").write_text((trunc / "sweep.json").read_text()[:200])
    plain = tmp_path / "plain"
    S.init_sweep(plain, _samples(2), TEMPLATE)
    L.run_sweep(plain, train_fn=fake_train, progress=False)
    (tmp_path / "typo.yaml").write_text("extends: smoke\nn_modles: 2\n")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    torch.save({"config": {"model": "efficientnet_b0", "twist": [0.5, 0.25, 0.25], "base_resolution": 64},
                "model": {"w": torch.zeros(1)}}, tmp_path / "b0.pt")
    root = make_imagefolder(tmp_path / "ds", classes=2, per_class=(8, 4), size=40)
    jpg = root / "train" / "class_1" / "img_002.jpg"
    jpg.write_bytes(jpg.read_bytes()[:300])
    vjpg = root / "val" / "class_1" / "img_002.jpg"
    vjpg.write_bytes(vjpg.read_bytes()[:300])
    return tmp_path


TINY = ["--twist", "0.5", "0.25", "0.25", "--base-resolution", "64", "--recipe", "smoke", "--batch-size", "4",
        "--threads", "1", "--quiet"]


@pytest.mark.parametrize("argv, command, match", [
    (["sweep", "status", "{tmp}/trunc"], "sweep status", "trunc/sweep.json: unreadable sweep spec (JSONDecodeError"),
    (["sweep", "run", "{tmp}/trunc", "--no-progress"], "sweep run", "trunc/sweep.json: unreadable sweep spec"),
    (["sweep", "init", "{tmp}/trunc", "--n", "2", "--num-classes", "10"], "sweep init", "unreadable sweep spec"),
    (["sweep", "init", "{tmp}/new", "--epochs", "0", "--num-classes", "10"], "sweep init",
     "epochs must be a positive integer, got 0"),
    (["sweep", "init", "{tmp}/new", "--train-per-class", "0", "--num-classes", "10"], "sweep init",
     "train_per_class (--train-per-class) must be a positive integer"),
    (["study", "report", "{tmp}/plain"], "study report", "plain sweep, not a study"),
    (["train", "--twist", "8", "8", "8", "--data", "/nonexistent"], "train", "more than rubik builds"),
    (["train", "--train-per-class", "0", "--data", "/nonexistent"], "train",
     "train_per_class (--train-per-class) must be a positive integer, got 0"),
    (["train", "--val-per-class", "0", "--data", "/nonexistent"], "train", "val_per_class"),
    (["validate", "--model", "tinynet_e", "--per-class", "0", "--data", "{tmp}/ds"], "validate",
     "--per-class must be a positive integer, got 0"),
    (["reproduce", "--preset", "{tmp}/typo.yaml", "--out", "{tmp}/run"], "reproduce",
     "unknown parameter(s) n_modles (did you mean n_models?)"),
    (["validate", "--checkpoint", "{tmp}/b0.pt", "--model", "tinynet_e", "--data", "{tmp}/ds"], "validate",
     "--model tinynet_e but {tmp}/b0.pt holds a trained 'efficientnet_b0'"),
    (["validate", "--checkpoint", "{tmp}/notes.txt", "--data", "{tmp}/ds"], "validate",
     "cannot read checkpoint '{tmp}/notes.txt'"),
    (["validate", "--model", "tinynet_e", "--weights", "{tmp}/notes.txt", "--data", "{tmp}/ds"], "validate",
     "notes.txt"),
    (["latency", "--twist", "0,1,1"], "latency", "--twist: resolution must be > 0"),
    (["latency", "--twist", "1,1"], "latency", "--twist '1,1': expected three comma-separated numbers"),
    (["latency", "--twist", "8,8,8"], "latency", "more than rubik builds"),
    (["latency", "--model", "nosuch"], "latency", "unknown model 'nosuch'"),
    (["validate", "--model", "nosuch", "--data", "{tmp}/ds"], "validate", "unknown model 'nosuch'"),
    (["train", "--data", "{tmp}/ds", "--pipeline", "folder", "--workers", "2", "--epochs", "1", *TINY], "train",
     "cannot read image '{tmp}/ds/train/class_1/img_002.jpg'"),
    (["validate", "--model", "tinynet_e", "--data", "{tmp}/ds", "--workers", "2", "--quiet"], "validate",
     "cannot read image '{tmp}/ds/val/class_1/img_002.jpg'"),
])
def test_inputs_that_were_tracebacks_are_one_line(odd_inputs, capsys, argv, command, match):
    """Issue 25's list: each is one line ``rubik CMD: error: ...``, status 2 (the last two after the
    worker that hit the damaged image: a traceback flattened into one line before)."""
    tmp = str(odd_inputs)
    assert cli_main([a.replace("{tmp}", tmp) for a in argv]) == 2
    line = _one_line_error(capsys, command)
    assert match.replace("{tmp}", tmp) in line, line
    assert len(line) < 1000 and "Traceback" not in line, line
