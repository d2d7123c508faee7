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
