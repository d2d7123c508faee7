"""The errors a new user meets next, on the GPU and released-weights paths (issue 26): each is one
line ``rubik CMD: error: ...`` with status 2, found before any data is read (the data paths given
here do not exist, so a data error would show) or any notebook runs (the run folder is never made)."""
import os
import time

import pytest
import torch

from rubik.cli import main as cli_main
from rubik.models import pretrained as P

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")


def _one_line_error(capsys, command):
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(f"rubik {command}: error: "), err
    return err[0]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Every release URL points nowhere (as offline), with an empty torch.hub cache and no
    $RUBIK_WEIGHTS_DIR."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(P.WEIGHTS_DIR_ENV, raising=False)
    for name, rel in list(P.RELEASES.items()):
        monkeypatch.setitem(P.RELEASES, name, P.Release(f"file://{tmp_path}/offline/{rel.file_name}", rel.source))
    return tmp_path


def _run(argv, capsys, command):
    t0 = time.perf_counter()
    rc = cli_main(argv)
    line = _one_line_error(capsys, command)
    assert rc == 2, line
    assert time.perf_counter() - t0 < 30, "found before any expensive work"
    return line


def test_validate_pretrained_offline_is_one_line_with_the_ways_to_install(offline, capsys):
    line = _run(["validate", "--model", "tinynet_e", "--pretrained", "--data", "/nonexistent"], capsys, "validate")
    assert "could not download tinynet_e weights from file://" in line
    assert "RUBIK_WEIGHTS_DIR" in line and "--weights /path/tinynet_e.pth" in line and "torch.hub's cache" in line


def test_validate_missing_weights_file_is_one_line(capsys):
    line = _run(["validate", "--model", "tinynet_e", "--weights", "/missing.pth", "--data", "/nonexistent"],
                capsys, "validate")
    assert "weights file '/missing.pth' does not exist" in line


def test_weights_error_is_a_user_error():
    from rubik.errors import UserError

    assert issubclass(P.WeightsError, UserError) and issubclass(P.WeightsError, RuntimeError)


@NO_CUDA
@pytest.mark.parametrize("argv, command", [
    (["train", "--model", "tinynet_e", "--device", "cuda", "--data", "/nonexistent"], "train"),
    (["validate", "--model", "tinynet_e", "--pretrained", "--device", "cuda", "--data", "/nonexistent"], "validate"),
    (["train", "--model", "tinynet_e", "--device", "cuda:3", "--data", "/nonexistent"], "train"),
])
def test_missing_gpu_is_one_line_before_data_or_weights(argv, command, capsys, offline):
    line = _run(argv, capsys, command)
    assert "no CUDA device is available here" in line and "--device cpu" in line


@NO_CUDA
def test_reproduce_cuda_preset_without_cuda_stops_before_the_first_notebook(tmp_path, capsys):
    out = tmp_path / "run"
    line = _run(["reproduce", "--preset", "imagenet100", "--data", "/nonexistent", "--out", str(out)],
                capsys, "reproduce")
    assert "preset 'imagenet100' trains on device 'cuda': no CUDA device is available here" in line
    assert "-p device=cpu" in line
    assert not out.exists()        # no notebook ran, nothing was written
    line = _run(["reproduce", "--preset", "cpu", "-p", "device=cuda", "--data", "/nonexistent", "--out", str(out)],
                capsys, "reproduce")
    assert "device 'cuda'" in line and not out.exists()


def test_reproduce_imagenet_offline_names_the_reproduce_way_to_give_weights(offline, tmp_path, capsys):
    from rubik import reproduce as R

    out, root = tmp_path / "run", tmp_path / "imagenet"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    argv = ["reproduce", "--preset", "imagenet", "-p", "device=cpu", "--data", str(root), "--out", str(out)]
    line = _run(argv, capsys, "reproduce")
    assert "notebook 06 evaluates the authors' released weights" in line and "could not" not in line
    assert "-p weights_dir=DIR" in line and "$RUBIK_WEIGHTS_DIR" in line and "-p released_weights=false" in line
    assert "create_model" not in line and "--weights" not in line      # the library's / validate's ways
    assert not out.exists()                                             # before any notebook, any data read
    # a missing data path is said first (nothing is downloaded for a run that cannot start)
    line = _run(argv[:-4] + ["--data", "/nonexistent", "--out", str(out)], capsys, "reproduce")
    assert "data path '/nonexistent' (from --data) does not exist" in line
    # the release files in a folder: -p weights_dir passes the check; -p released_weights=false skips it
    wdir = tmp_path / "weights"
    wdir.mkdir()
    for rel in P.RELEASES.values():
        torch.save({}, wdir / rel.file_name)
    nbs = R.list_notebooks()
    R.fetch_released_weights(R.load_preset("imagenet", ["device=cpu", f"weights_dir={wdir}"]), nbs)
    assert not R.evaluates_released_weights(R.load_preset("imagenet", ["released_weights=false"]), nbs)
    assert not R.evaluates_released_weights(R.load_preset("imagenet"), R.select_notebooks(nbs, start="07"))
    assert R.evaluates_released_weights(R.load_preset("imagenet"), nbs)
    assert not R.evaluates_released_weights(R.load_preset("cpu"), nbs)     # no ImageNet root


def test_reproduce_data_path_from_the_environment_names_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RUBIK_DATA_DIR", "/nonexistent")
    line = _run(["reproduce", "--preset", "cpu", "--out", str(tmp_path / "run")], capsys, "reproduce")
    assert "data path '/nonexistent' (from $RUBIK_DATA_DIR) does not exist" in line
    assert "change $RUBIK_DATA_DIR" in line


def test_notebook_data_lookup_names_the_variable(monkeypatch):
    from rubik.reproduce import ReproduceError, find_data_dir

    monkeypatch.setenv("RUBIK_DATA_DIR", "/nonexistent")
    with pytest.raises(ReproduceError, match=r"came from \$RUBIK_DATA_DIR"):
        find_data_dir(None, "imagenette")


def test_reproduce_silences_the_kernels_transport_warning(tmp_path, capfd):
    """ipykernel >= 7 warns on every kernel start that its local TCP sockets are unencrypted; the
    runner starts its kernels with their own log at ERROR, so a run prints only its own lines."""
    from rubik.reproduce import KERNEL_ARGS, run

    assert "--IPKernelApp.log_level=ERROR" in KERNEL_ARGS
    run("smoke", only=["01"], out_dir=tmp_path / "run", echo=lambda *_: None)
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
    assert (tmp_path / "run" / "01_sampling.ipynb").is_file()
