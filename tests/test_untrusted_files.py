"""Issue 36: no code runs from a data file and no record is taken on trust: checkpoints load without
pickle's objects, trial ids and records are checked wherever they are read, released weights are pinned
by hash, and DRNet's and the presets' odd inputs are one-line errors. The README's "Guarantees" name
these tests."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rubik.cli import main as cli_main
from rubik.errors import UnsafeFileError
from rubik.train import train
from tests.test_guarantees import _one_line_error, run_cfg  # noqa: F401 (fixture)
from tests.test_sweep import fake_env  # noqa: F401 (fixture)
from tests.test_train import tiny_cfg


class _Payload:
    """What a hostile checkpoint holds: unpickling it runs ``touch MARKER``."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(1)}, "config": {"x": _Payload(marker)}}, path)
    return path


# ----------------------------------------------------------------------------- 1. no code from a checkpoint

def _drnet_preset(tmp_path, tiny_imagefolder):
    from rubik.drnet.experiment import load_preset
    from tests.test_drnet import ARCH

    preset = {**load_preset("imagenette"), "backbone": ARCH.to_dict(), "predictor_channels": [4, 8],
              "predictor_view": 16, "targets": [0.8], "recipe": {"name": "smoke"}, "seeds": [0], "n_random": 3,
              "epochs": {"fixed": 1, "multires": 1, "joint": 1}, "data": {"pipeline": "tensor", "workers": 0}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


@pytest.mark.parametrize("where", ["validate", "train --resume", "drnet eval", "drnet joint init"])
def test_a_crafted_checkpoint_runs_no_code_and_fails_in_one_line(where, tiny_imagefolder, cache_dir, tmp_path,
                                                                   capsys):
    marker = tmp_path / "PWNED"
    data = str(tiny_imagefolder)
    if where == "validate":
        argv = ["validate", "--checkpoint", str(_plant(tmp_path / "x.pt", marker)), "--data", data]
    elif where == "train --resume":
        _plant(tmp_path / "run" / "checkpoint.pt", marker)
        argv = ["train", "--data", data, "--out", str(tmp_path / "run"), "--resume"]
    elif where == "drnet eval":
        argv = ["drnet", "eval", str(_plant(tmp_path / "x.pt", marker)), "--data", data]
    else:   # a multires run planted as finished: the joint stage starts from its checkpoint
        multires = tmp_path / "exp" / "seed0" / "multires"
        _plant(multires / "checkpoint.pt", marker)
        (multires / "result.json").write_text("{}")
        (multires / "eval.json").write_text("{}")
        argv = ["drnet", "run", str(tmp_path / "exp"), "--preset", str(_drnet_preset(tmp_path, tiny_imagefolder)),
                "--data", data, "--only", "joint"]
    assert cli_main(argv) == 2
    line = _one_line_error(capsys, " ".join(argv[:2]) if argv[0] == "drnet" else argv[0])
    assert "holds Python objects" in line and "rubik checkpoint convert --trust" in line, line
    assert not marker.exists()


def test_checkpoints_load_without_pickle_and_old_ones_convert_only_when_trusted(run_cfg, capsys):
    train(run_cfg)
    path = Path(run_cfg.out_dir) / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)          # the format: tensors and plain values
    assert ck["epoch"] == 1
    ck["rng"][0]["numpy"] = np.random.get_state()                          # as rubik wrote it before issue 36
    torch.save(ck, path)
    resume = dataclasses.replace(run_cfg, resume=True)
    with pytest.raises(UnsafeFileError, match=f"convert it once: rubik checkpoint convert --trust {path}"):
        train(resume)
    assert cli_main(["checkpoint", "convert", str(path)]) == 2
    assert "pass --trust" in _one_line_error(capsys, "checkpoint convert")
    assert cli_main(["checkpoint", "convert", "--trust", str(path)]) == 0
    assert train(resume)["status"] == "done"


# ----------------------------------------------------------------------------- 3. released weights are pinned

def test_a_released_file_with_another_hash_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    from rubik.models import pretrained as P

    folder = tmp_path / "weights"
    folder.mkdir()
    fake = folder / "tinynet_e.pth"
    torch.save({"w": torch.zeros(1)}, fake)      # any file under the release's name
    monkeypatch.setenv(P.WEIGHTS_DIR_ENV, str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    pinned = "ab" * 32
    url = P.RELEASES["tinynet_e"].url
    monkeypatch.setitem(P.RELEASES, "tinynet_e", dataclasses.replace(P.RELEASES["tinynet_e"], sha256=pinned))
    (tmp_path / "ds").mkdir()
    assert cli_main(["validate", "--model", "tinynet_e", "--pretrained", "--data", str(tmp_path / "ds")]) == 2
    line = _one_line_error(capsys, "validate")
    assert f"sha256 of {fake} is {P.sha256_of(fake)}, expected {pinned}" in line and url in line, line
    # a release with no pinned hash (the authors publish none) is loaded with a warning giving its hash
    monkeypatch.setitem(P.RELEASES, "tinynet_e", dataclasses.replace(P.RELEASES["tinynet_e"], sha256=None))
    with pytest.raises(P.WeightsError, match="do not fit"):
        P.load_pretrained(torch.nn.Linear(1, 1), True, name="tinynet_e")
    assert f"{fake} is loaded as tinynet_e's released weights unverified" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 2. no record taken on trust

def _fake_sweep(tmp_path, n=2):
    from rubik import launcher as L
    from rubik import sweep as S
    from tests.test_sweep import TEMPLATE, _samples, fake_train

    d = tmp_path / "sw"
    S.init_sweep(d, _samples(n), TEMPLATE)
    return d, lambda: L.run_sweep(d, train_fn=fake_train, progress=False)


def _files_outside(tmp_path, d):
    return sorted(str(p) for p in tmp_path.rglob("*") if p.is_file() and d not in p.parents
                  and "cache" not in p.parts and p.name != "fake.log")


def test_a_spec_whose_trial_id_leaves_the_sweep_is_refused(tmp_path, fake_env, capsys):
    d, _ = _fake_sweep(tmp_path)
    spec = json.loads((d / "sweep.json").read_text())
    spec["trials"][0]["id"] = "../../x"                                   # hand-edited or downloaded
    (d / "sweep.json").write_text(json.dumps(spec))
    before = _files_outside(tmp_path, d)
    for cmd in (["sweep", "run", str(d), "--no-progress"], ["sweep", "status", str(d)]):
        assert cli_main(cmd) == 2
        assert "trial id '../../x' is not a plain file name" in _one_line_error(capsys, " ".join(cmd[:2]))
    assert _files_outside(tmp_path, d) == before and not list((d / "trials").glob("*.json"))


def _kept(folder, d, tid, record):
    from rubik import jobqueue as Q

    path = Q._unsaved_path(folder, d, tid.replace("/", "_"))
    path.write_text(json.dumps({"sweep_dir": str(d.resolve()), "trial": tid, "record": record}))
    return path


def test_kept_records_are_moved_in_only_from_a_private_folder_and_when_they_check_out(tmp_path, fake_env, cache_dir,
                                                                                      monkeypatch, capsys):
    import tempfile

    from rubik import jobqueue as Q
    from rubik import sweep as S
    from rubik.heldout import pack_correct
    from rubik.identity import config_fingerprint

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    d, run = _fake_sweep(tmp_path, 3)
    spec = S.load_spec(d)
    cache, shared = Q._unsaved_folders()
    cfg = S.trial_config(spec, spec["trials"][1])
    forged = {"id": "r001", "status": "done", "config": cfg, "fingerprint": config_fingerprint(cfg),
              "metrics": {"top1": 99.9, "val_correct": pack_correct([1, 0, 1, 0], [0, 0, 1, 1])}}
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)                                          # anyone may write here: not read at all
    planted = _kept(shared, d, "r000", {**forged, "id": "r000", "metrics": {"top1": 99.9}})
    cache.mkdir(parents=True, mode=0o700)
    escaping = _kept(cache, d, "../../x", {**forged, "id": "../../x"})
    inconsistent = _kept(cache, d, "r001", forged)                   # its fingerprint is right, its numbers are not
    other = _kept(cache, d, "r002", {**forged, "id": "r002"})          # r001's record kept as r002
    before = _files_outside(tmp_path, d)
    df = run()
    err = capsys.readouterr().err
    assert f"not reading kept records in {shared}: others can write it" in err and planted.exists()
    assert "trial id '../../x' is not a plain file name" in err and not escaping.exists()
    assert "top1 99.9 is not what its per-image outcomes val_correct give (50.0000)" in err
    assert "r002.json into" in err and "its config is another trial's" in err
    assert not inconsistent.exists() and not other.exists() and len(list(cache.glob("*.rejected"))) == 3
    assert list(df.status) == ["done"] * 3 and df.top1.max() < 99                   # all trained, none forged
    assert set(_files_outside(tmp_path, d)) - set(before) <= {str(p) for p in cache.glob("*.rejected")}


def test_a_record_with_truncated_per_image_bits_is_corrupt_and_named(tmp_path, fake_env, capsys):
    from rubik import sweep as S
    from rubik.heldout import pack_correct

    d, run = _fake_sweep(tmp_path)
    run()
    path = d / "trials" / "r001.json"
    rec = json.loads(path.read_text())
    packed = pack_correct(np.arange(100) % 2 == 0, np.zeros(100, dtype=int))
    rec["metrics"].update(top1=50.0, val_correct={**packed, "bits": packed["bits"][:8]})   # cut short
    path.write_text(json.dumps(rec))
    assert S.sweep_status(d)["corrupt"] == 1
    df = S.load_results(d)
    assert list(df.status) == ["done", "corrupt"] and f"{path}: damaged per-image outcomes val_correct" in df.error[1]
    assert cli_main(["sweep", "status", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "corrupt r001: " in out and "r001.json" in out and "Traceback" not in out + err
    assert list(run().status) == ["done", "done"] and (d / "trials" / "r001.json.corrupt").exists()


def test_sync_study_copies_whole_records_only(tmp_path):
    import shutil
    import subprocess
    import sys

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy2(Path(__file__).resolve().parents[1] / "tools" / "sync_study.sh", repo / "tools")
    dest = repo / "data" / "s" / "sweep"
    (dest / "trials").mkdir(parents=True)
    (dest / "sweep.json").write_text("{}")
    src = tmp_path / "running"
    (src / "trials").mkdir(parents=True)
    (src / "sweep.json").write_text("{}")
    (src / "trials" / "a.json").write_text('{"id": "a", "status": "done"}')
    (src / "trials" / "b.json").write_text('{"id": "b", "status": "do')          # a copy in progress

    def sh(*cmd):
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "PYTHON": sys.executable})

    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@e.com"], ["git", "config", "user.name", "t"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        sh(*cmd)
    r = sh("bash", "tools/sync_study.sh", str(src), "data/s/sweep", "")
    assert r.returncode == 0 and "running/trials/b.json is not a complete record; not copied" in r.stderr, r.stderr
    assert sh("git", "show", "--name-only", "--format=", "HEAD").stdout.split() == ["data/s/sweep/trials/a.json"]
    assert not (dest / "trials" / "b.json").exists() and not list((dest / "trials").glob(".*"))
    (dest / "trials" / "c.json").write_text('{"id": "c"}')                   # damaged in place: nothing is staged
    r = sh("bash", "tools/sync_study.sh", str(src), "data/s/sweep", "")
    assert r.returncode == 4 and "c.json: not a trial record" in r.stderr
    assert sh("git", "diff", "--cached", "--name-only").stdout == ""


def test_a_closed_pipe_is_silent(tmp_path, fake_env):
    import subprocess
    import sys

    d, _ = _fake_sweep(tmp_path, 3)
    p = subprocess.Popen([sys.executable, "-m", "rubik", "sweep", "status", str(d)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdout.close()                                     # `| head -1` has read its line and gone
    assert p.wait(timeout=60) == 0 and p.stderr.read() == ""


# ----------------------------------------------------------------------------- 5. presets and study settings

@pytest.mark.parametrize("text, match", [
    ("a: !!python/object/apply:os.system [touch {tmp}/PWNED]\n", "could not determine a constructor"),
    ("extends: smoke\n  x: [\n", "line 2, column 4: mapping values are not allowed here"),
    (b"\xff\xfe\x00binary", "not a text file"),
    ("extends: smoke\ntraining: {batch_size: []}\n", "training.batch_size=[]: expected a positive integer"),
    ("extends: smoke\ntraining: {epochs: 1, epochs: 7}\n", "duplicate key 'epochs'"),
    ("extends: smoke\ntraining: {epochs: 010}\n", "'010' is a YAML 1.1 integer"),
    ("extends: smoke\ntraining: {epochs: 0x10}\n", "'0x10' is a YAML 1.1 integer"),
    ("a: &a [*a]\n", "aliases (*a) are not allowed"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n",
     "aliases (*a) are not allowed"),                                            # billion laughs, refused at once
])
def test_preset_files_that_were_tracebacks_or_misread_are_one_line(tmp_path, capsys, text, match):
    path = tmp_path / "p.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text.replace("{tmp}", str(tmp_path)))
    assert cli_main(["reproduce", "--preset", str(path), "--out", str(tmp_path / "run")]) == 2
    line = _one_line_error(capsys, "reproduce")
    assert f"preset file {path}: " in line and match in line, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("argv, command, match", [
    (["reproduce", "--preset", "smoke", "--out", "{tmp}/run", "-p", "training.epochs="], "reproduce",
     "-p training.epochs=: no value given"),
    (["reproduce", "--preset", "smoke", "--out", "{tmp}/run", "-p", "training.epochs=010"], "reproduce",
     "'010' is a YAML 1.1 integer"),
    (["study", "init", "{tmp}/st", "--preset", "imagenette_long", "--data", "{tmp}/ds", "-p", "study.seeds=[]"],
     "study init", "-p study.seeds=[]: expected a non-empty list of non-negative integers"),
    (["study", "init", "{tmp}/st", "--preset", "imagenette_long", "--data", "{tmp}/ds", "-p", "study.epochs=[0]"],
     "study init", "-p study.epochs=[0]: expected a non-empty list of positive integers"),
])
def test_bad_parameters_are_one_line(tmp_path, capsys, argv, command, match):
    assert cli_main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert match in _one_line_error(capsys, command)
    assert not (tmp_path / "run").exists() and not (tmp_path / "st").exists()


def test_extends_is_looked_up_beside_the_preset_file(tmp_path, monkeypatch):
    from rubik.preset import load_preset

    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "base.yaml").write_text("extends: smoke\ntraining: {epochs: 3}\n")
    (tmp_path / "presets" / "child.yaml").write_text("extends: base.yaml\n")
    monkeypatch.chdir(tmp_path)                                       # not the presets' folder
    assert load_preset(str(tmp_path / "presets" / "child.yaml"))["epochs"] == 3


# ----------------------------------------------------------------------------- 4. DRNet's edges

_DRNET_BAD = [
    ("candidates=[]", "DRNet candidates []: expected a non-empty list"),
    ("candidates=1.0", "DRNet candidates 1.0: expected a non-empty list"),
    ("candidates=[1.0, .nan]", "DRNet candidates [1.0, nan]: expected a non-empty list of finite scales"),
    ("targets=0.6", "DRNet targets 0.6: expected a non-empty list"),
    ("targets=[0.8, 0.8]", "DRNet targets [0.8, 0.8]: expected distinct values"),
    ("temperature=5", "DRNet temperature 5: expected a pair [start, end]"),
    ("epochs={fixed: 1}", "DRNet epochs {'fixed': 1}: expected a mapping of positive epochs per stage"),
    ("seeds=0", "DRNet seeds 0: expected a non-empty list"),
    ("seeds=[]", "DRNet seeds []: expected a non-empty list"),
    ("seeds=[0, 0]", "expected a non-empty list of distinct non-negative integers"),
    ("data=3", "DRNet data 3: expected a mapping of name"),
    ("data={bogus: 1}", "DRNet data {'bogus': 1}: expected a mapping of name"),
    ("data={name: nope}", "unknown dataset name 'nope'"),
    ("backbone=3", "DRNet backbone 3: expected an Arch mapping"),
    ("backbone={base: nope}", "unknown base 'nope'"),
    ("backbone={}", "an Arch needs a 'base'"),
    ("recipe={}", "DRNet recipe {}: expected a mapping with a recipe name"),
    ("predictor_channels=3", "DRNet predictor_channels 3: expected a non-empty list of positive integers"),
    ("n_random=x", "DRNet n_random 'x': expected a non-negative integer"),
    ("eta=*a", "aliases (*a) are not allowed"),                     # read through rubik.yamlsafe
    ("epochs={fixed: 1, fixed: 2}", "duplicate key 'fixed'"),
    ("eta=010", "'010' is a YAML 1.1 integer"),
    ("eta=", "-p eta=: no value given"),
]


@pytest.mark.parametrize("param, match", _DRNET_BAD, ids=[p for p, _ in _DRNET_BAD])
def test_drnet_bad_parameters_are_one_line_before_anything_is_written(tmp_path, capsys, param, match):
    argv = ["drnet", "run", str(tmp_path / "exp"), "--data", str(tmp_path / "none"), "-p", param]
    assert cli_main(argv) == 2
    line = _one_line_error(capsys, "drnet run")
    assert match in line, line
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("text, match", [
    ("backbone: &a [*a]\n", "aliases (*a) are not allowed"),          # was a 3,002-line RecursionError
    ("eta: 1\neta: 2\n", "duplicate key 'eta'"),
    ("eta: !!python/object/apply:os.system [touch {tmp}/PWNED]\n", "could not determine a constructor"),
    ("- 1\n", "expected a mapping of settings"),
])
def test_drnet_preset_files_are_read_strictly(tmp_path, capsys, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("{tmp}", str(tmp_path)))
    assert cli_main(["drnet", "run", str(tmp_path / "exp"), "--preset", str(path), "--data", str(tmp_path)]) == 2
    line = _one_line_error(capsys, "drnet run")
    assert f"DRNet preset {path}: " in line and match in line, line
    assert not (tmp_path / "exp").exists() and not (tmp_path / "PWNED").exists()


def test_drnet_empty_seeds_option_is_refused(tmp_path, capsys):
    assert cli_main(["drnet", "run", str(tmp_path / "exp"), "--data", str(tmp_path), "--seeds", ""]) == 2
    assert "--seeds '': expected comma-separated integers" in _one_line_error(capsys, "drnet run")
    assert not (tmp_path / "exp").exists()


def test_drnet_targets_get_exact_folders(tmp_path):
    from rubik.drnet.experiment import plan
    from rubik.drnet.settings import target_name

    assert [target_name(t) for t in (0.45, 0.6, 0.8, 0.80000001, 1e-05, 1)] == [
        "0.45", "0.6", "0.8", "0.80000001", "1e-05", "1"]                 # the committed folders keep their names
    preset = {**_tiny_drnet_preset(), "targets": [0.8, 0.80000001]}
    names = [r["name"] for r in plan(preset, None, tmp_path / "exp")]
    assert names[-2:] == ["joint_0.8", "joint_0.80000001"]


def _tiny_drnet_preset():
    from rubik.drnet.experiment import load_preset
    from tests.test_drnet import ARCH

    return {**load_preset("imagenette"), "backbone": ARCH.to_dict(), "predictor_channels": [4, 8],
            "predictor_view": 16, "targets": [0.8], "recipe": {"name": "smoke"}, "seeds": [0], "n_random": 3,
            "epochs": {"fixed": 1, "multires": 1, "joint": 1}, "data": {"pipeline": "tensor", "workers": 0}}


@pytest.fixture()
def fake_drnet(monkeypatch):
    """``rubik.drnet.experiment`` with training and evaluation replaced by stand-ins that write what the real
    ones write (config.json, result.json, a checkpoint; an eval report): the experiment's bookkeeping in a
    second. ``calls``: the out_dir of every training."""
    import threading
    import time

    import rubik.drnet.experiment as E
    from rubik.rundir import atomic_write_json

    calls, guard = [], threading.Lock()

    def train(cfg):
        with guard:
            calls.append(cfg.out_dir)
        out = Path(cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", cfg.to_dict())
        time.sleep(0.2)
        (out / "checkpoint.pt").write_bytes(b"weights")
        atomic_write_json(out / "result.json", {"top1": 50.0, "train_time_s": 0.2})
        return {"top1": 50.0, "train_time_s": 0.2}

    def evaluate(model, data, *, n_random, seed, device):
        f = {"top1": {"select": 50.0, "test": 50.0}, "mean_flops": {"select": 1.0, "test": 1.0}, "correct": ""}
        return {"resolutions": [48], "fixed": [f], "routed": {}, "random": {"n": n_random}}

    monkeypatch.setattr(E, "train", train)
    monkeypatch.setattr(E, "load_drnet", lambda path: (None, {}))
    monkeypatch.setattr(E, "evaluate_drnet", evaluate)
    return calls


def test_drnet_rerun_with_other_settings_is_refused_and_keeps_preset_json(tmp_path, tiny_imagefolder, fake_drnet,
                                                                         capsys):
    from rubik.drnet.experiment import run_experiment

    exp = tmp_path / "exp"
    run_experiment(_tiny_drnet_preset(), str(tiny_imagefolder), exp, log=lambda *a: None)
    assert len(fake_drnet) == 5
    saved = (exp / "preset.json").read_bytes()
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_tiny_drnet_preset()))
    argv = ["drnet", "run", str(exp), "--preset", str(path), "--data", str(tiny_imagefolder)]
    assert cli_main(argv + ["-p", "eta=5", "-p", "temperature=[2, 0.5]"]) == 2
    line = _one_line_error(capsys, "drnet run")
    assert f"{exp}/seed0/joint_0.8 was trained or evaluated with other settings (eta 2.0 -> 5.0; temperature" in line
    assert "new folder" in line
    assert (exp / "preset.json").read_bytes() == saved and len(fake_drnet) == 5          # nothing trained or rewritten
    assert cli_main(argv + ["-p", "epochs={fixed: 2, multires: 1, joint: 1}"]) == 2     # a fixed run's epochs
    assert "seed0/fixed_48 was trained or evaluated with other settings (epochs 1 -> 2" in capsys.readouterr().err
    # a folder left from another target is checked too: preset.json lists every run's settings
    assert cli_main(argv + ["-p", "targets=[0.7]", "-p", "eta=5"]) == 2
    assert "joint_0.8 was trained" in capsys.readouterr().err
    # the same settings with one more seed and target: trains only the new runs, and preset.json lists them all
    assert cli_main(argv + ["--seeds", "1", "-p", "targets=[0.7]"]) == 0
    assert len(fake_drnet) == 10 and not (exp / "seed1" / "joint_0.8").exists()      # seed 1's five runs, no more
    kept = json.loads((exp / "preset.json").read_text())
    assert kept["seeds"] == [0, 1] and kept["targets"] == [0.8, 0.7]
    assert json.loads((exp / "seed1" / "joint_0.7" / "eval.json").read_text())["fingerprint"]


def test_drnet_damaged_eval_json_is_named_by_report_and_evaluated_again_by_run(tmp_path, tiny_imagefolder,
                                                                             fake_drnet, capsys):
    from rubik.drnet.experiment import run_experiment

    exp = tmp_path / "exp"
    run_experiment(_tiny_drnet_preset(), str(tiny_imagefolder), exp, log=lambda *a: None)
    for damage in ("{}", '{"resolutions": [48], "fix'):
        bad = exp / "seed0" / "fixed_36" / "eval.json"
        bad.write_text(damage)
        assert cli_main(["drnet", "report", str(exp)]) == 2
        line = _one_line_error(capsys, "drnet report")
        assert f"{bad}: damaged evaluation" in line and f"rubik drnet run {exp}" in line, line
        run_experiment(_tiny_drnet_preset(), str(tiny_imagefolder), exp, log=lambda *a: None)
        assert json.loads(bad.read_text())["name"] == "fixed_36" and len(fake_drnet) == 5   # evaluated, not trained


def test_two_drnet_runs_in_one_folder_train_each_run_once(tmp_path, tiny_imagefolder, fake_drnet):
    import threading

    from rubik.drnet.experiment import run_experiment
    from tests.test_guarantees import _spawn_holder

    exp = tmp_path / "exp"
    runs = [threading.Thread(target=run_experiment, args=(_tiny_drnet_preset(), str(tiny_imagefolder), exp),
                             kwargs={"poll_s": 0.05, "log": lambda *a: None}) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join(60)
    assert sorted(fake_drnet) == sorted(set(fake_drnet)) and len(fake_drnet) == 5       # each run trained once
    # a run another process holds is left to it, in one line, and taken when that process is gone
    lock = exp / "seed1" / "multires" / "drnet.lock"
    lock.parent.mkdir(parents=True)
    holder = _spawn_holder(lock)
    lines = []
    seed1 = {**_tiny_drnet_preset(), "seeds": [1]}
    t = threading.Thread(target=run_experiment, args=(seed1, str(tiny_imagefolder), exp),
                         kwargs={"poll_s": 0.05, "log": lines.append, "only": ["multires"]})
    t.start()
    try:
        for _ in range(100):
            if lines:
                break
            threading.Event().wait(0.05)
        assert lines == [f"[drnet] seed1/multires: in use by another `rubik drnet run` (pid {holder.pid} on "
                         f"{os.uname().nodename}); left to it"]
    finally:
        holder.kill()
        holder.wait()
    t.join(60)
    assert fake_drnet.count(str(lock.parent)) == 1


@pytest.mark.parametrize("experiment", ["schedule", "ladder"])
def test_study_report_on_a_study_with_a_few_records(tmp_path, capsys, experiment):
    """`rubik study report` with a handful of records (was 52 lines from study_stats.depth_estimands): the
    plan's estimands whose cells are missing read "not yet measured"."""
    import matplotlib

    from rubik import launcher as L
    from rubik import study as St
    from rubik import sweep as S
    from tests.test_study import STUDY, fake_study_train

    matplotlib.use("Agg")
    design = St.study_design(STUDY, base_resolution=64, num_classes=10)
    d = tmp_path / "study"
    S.init_sweep(d, design[design.experiment == experiment].iloc[:4].reset_index(drop=True),
                 {"model": "efficientnet_b0", "data": {}, "recipe": "proxy", "epochs": 5, "seed": 0})
    L.run_worker(d, train_fn=fake_study_train, heartbeat=0)
    assert cli_main(["study", "report", str(d)]) == 0
    out = capsys.readouterr().out
    assert "D40: depth slope, ladder, 40 epochs: not measured yet" in out and "\n4 finished trials" in out
    depth = (d / "tables" / "prereg_depth.md").read_text()
    assert depth.count("not yet measured") >= 2                         # D40 and D80: no cells yet


class _Planted:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_converting_a_crafted_checkpoint_runs_nothing_even_with_trust(tmp_path, capsys):
    """`rubik checkpoint convert --trust` reads only tensors and numpy arrays: a planted object is
    refused in one line, nothing runs and the file is left as it was."""
    marker, path = tmp_path / "ran", tmp_path / "checkpoint.pt"
    torch.save({"rng": _Planted(marker)}, path)
    before = path.read_bytes()
    assert cli_main(["checkpoint", "convert", "--trust", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a checkpoint of an older rubik" in err[0]
    assert not marker.exists() and path.read_bytes() == before
