"""The README tells the truth: its Python snippets run as written (in a folder holding the two
files they name: a timm-format TinyNet-A checkpoint and a small finished sweep), and the reprs
it shows are the code's."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def python_snippets():
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _fake_train(cfg):
    r, d, w = cfg["arch"]["twist"]   # the trial's Arch (a dict)
    return {"top1": 40 + 10 * r + 5 * d + 2 * w}


@pytest.fixture()
def readme_folder(tmp_path, monkeypatch):
    """The files the snippets name: ``tinynet_a.pth`` (timm's state dict, also where
    ``pretrained=True`` finds it offline: ``$RUBIK_WEIGHTS_DIR``) and ``runs/sweep``."""
    import timm
    import torch

    from rubik.launcher import run_sweep
    from rubik.sweep import init_sweep, sample_twists

    torch.save(timm.create_model("tinynet_a").state_dict(), tmp_path / "tinynet_a.pth")
    samples = sample_twists(12, "efficientnet_b0", seed=0, base_resolution=64, num_classes=10, mode="stratified")
    init_sweep(tmp_path / "runs" / "sweep", samples, {"data": {"root": None}})
    run_sweep(tmp_path / "runs" / "sweep", train_fn=_fake_train, progress=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUBIK_WEIGHTS_DIR", str(tmp_path))   # no download: the released file placed by hand
    return tmp_path


def test_readme_python_snippets_run(readme_folder):
    snippets = python_snippets()
    assert len(snippets) >= 2
    for i, code in enumerate(snippets):
        try:
            exec(compile(code, f"README.md python snippet {i + 1}", "exec"), {"__name__": "readme"})
        except Exception as e:  # name the snippet, not just the line
            pytest.fail(f"README python snippet {i + 1} fails: {type(e).__name__}: {e}\n{code}")


def test_readme_shows_the_real_repr():
    import rubik

    model = rubik.create_model("tinynet_c", num_classes=1000)
    assert f"# {model.resolution}, {model.twist!r}" in README
    m = rubik.create_model("efficientnet_b0", twist=(0.8, 0.7, 0.6), base_resolution=64, num_classes=10)
    assert f"# the Arch it was built from; {m.arch.input_size} px; {m.arch.repeats}" in README


def test_readme_states_one_reproduce_time():
    """`make reproduce` takes one number everywhere it is stated, next to its source: the timed
    reference run, whose README gives the command, and the preset's comment says the same."""
    head = README.split("## Results so far")[0]   # later sections time other runs (B0 training...)
    lines = [ln for ln in head.splitlines() if "smoke" not in ln]
    times = set(re.findall(r"~?(\d+(?:\.\d+)?(?:-\d+)?) min", "\n".join(lines)))
    assert times == {"17.5"}, times
    assert "runs/reference/cpu/README.md" in head
    ref = (ROOT / "runs/reference/cpu/README.md").read_text()
    assert "17.5 min" in ref and "make reproduce" in ref
    assert "17.5 min" in (ROOT / "rubik/presets/cpu.yaml").read_text()
    assert "identical accuracies" not in README
    assert "RUBIK_CACHE_DIR" in README and "~/.cache/rubik" in README
