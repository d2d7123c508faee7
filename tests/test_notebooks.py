"""The notebooks as a JupyterLab user meets them: opened from notebooks/, run top to bottom in the
project's kernel with the defaults of their parameters cell (nothing injected), the data found
through $RUBIK_DATA_DIR. The data is a tiny synthetic ImageFolder, so the cpu-preset defaults
(n_models + 5 references, then the tiny-vs-giant trainings) take one step per epoch.
"""
from pathlib import Path

import nbformat
import pytest

from rubik import reproduce as R

ROOT = Path(__file__).resolve().parents[1]


def _execute(path: Path):
    """What Jupyter does with a notebook: execute every cell in its metadata's kernel, cwd = its folder."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name=nb.metadata.kernelspec.name, timeout=600,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.fixture()
def jupyterlab_env(tmp_path, monkeypatch):
    data = R.make_synthetic_imagefolder(tmp_path / "data", classes=4, train_per_class=8, val_per_class=4, size=64)
    monkeypatch.setenv(R.DATA_ENV, str(data))
    monkeypatch.setenv(R.RUN_DIR_ENV, str(tmp_path / "run"))    # not the repository's runs/interactive
    monkeypatch.setenv("RUBIK_CACHE_DIR", str(tmp_path / "cache"))  # not ~/.cache/rubik
    R.ensure_kernel()
    return tmp_path


@pytest.mark.slow
def test_every_notebook_runs_top_to_bottom_with_its_defaults(jupyterlab_env):
    run = jupyterlab_env / "run"
    for path in R.list_notebooks():
        nb = _execute(path)
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "1000-class head" not in text, path.name   # the data's class count, not ImageNet's
    n_refs = 5   # B0 and the giants B^-1..B^-4
    assert len(list((run / "sweep" / "trials").glob("*.json"))) == R.load_preset("cpu")["n_models"] + n_refs
    from rubik.sweep import load_results

    results = load_results(run / "sweep")
    assert (results.status == "done").all(), results[["id", "status", "error"]]
    assert (run / "figures" / "fig1_frontier.png").exists() and (run / "tables" / "tiny_vs_giant.csv").exists()
    assert not (ROOT / "notebooks" / "runs").exists()


def test_a_notebook_without_data_stops_in_its_first_cell_with_one_line(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    monkeypatch.delenv(R.DATA_ENV, raising=False)
    monkeypatch.setattr(R, "DEFAULT_DATA_DIR", tmp_path / "nowhere")
    with pytest.raises(R.ReproduceError, match=r"no data for dataset 'imagenette': set data_dir .*RUBIK_DATA_DIR"):
        R.find_data_dir(None, "imagenette")
    assert R.find_data_dir(None, "imagenette", required=False) is None
    with pytest.raises(R.ReproduceError, match=r"does not exist.*set data_dir in the parameters cell"):
        R.find_data_dir(str(tmp_path / "missing"), "imagenette")
    # in a kernel: the error is one line, no traceback
    assert R.ReproduceError("x")._render_traceback_() == ["ReproduceError: x"]
    monkeypatch.setenv(R.RUN_DIR_ENV, str(tmp_path / "run"))
    monkeypatch.setenv(R.DATA_ENV, str(tmp_path / "missing"))
    R.ensure_kernel()
    with pytest.raises(CellExecutionError) as e:
        _execute(ROOT / "notebooks" / "01_sampling.ipynb")
    assert "data root" in str(e.value) and "does not exist" in str(e.value)
    assert not (tmp_path / "run" / "sweep").exists()
