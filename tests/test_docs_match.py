"""Docs that match the code (issue 37): counts the README states, the pinned libraries, the make
user's data hint, and committed outputs that regenerate byte for byte."""
import filecmp
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
WORDS = {6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def test_readme_counts_the_notebooks():
    n = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.py")))
    counts = re.findall(r"\b(six|seven|eight|nine|ten|\d+) notebooks\b", README)
    assert counts and set(counts) == {WORDS[n]}, (n, counts)


def test_readme_states_no_stale_test_count():
    """A count of tests goes stale with every test added; the README says how to count them."""
    assert not re.search(r"\b\d+ tests\b", README)
    assert "--collect-only" in README


def test_constraints_pin_the_numeric_libraries_and_make_uses_them():
    pins = dict(ln.split("==") for ln in (ROOT / "constraints.txt").read_text().splitlines()
                if ln.strip() and not ln.startswith("#"))
    for lib in ("numpy", "scipy", "scikit-learn", "pandas", "pillow", "matplotlib", "torch", "torchvision"):
        assert lib in pins, lib
    make = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in make and "pyproject.toml constraints.txt" in make
    assert f"torch=={pins['torch']} torchvision=={pins['torchvision']}" in make   # one torch pin
    assert "constraints.txt" in README


def test_make_reproduce_without_data_names_the_make_variable(tmp_path, monkeypatch):
    from rubik.errors import ReproduceError
    from rubik.reproduce import resolve_data

    cfg = {"preset": "cpu", "dataset": "imagenette", "data_dir": None}
    monkeypatch.setenv("RUBIK_DATA_OPTION", "DATA=PATH (make reproduce DATA=PATH)")
    with pytest.raises(ReproduceError, match="pass DATA=PATH"):
        resolve_data(cfg, str(tmp_path / "missing"), tmp_path)
    monkeypatch.delenv("RUBIK_DATA_OPTION")
    with pytest.raises(ReproduceError, match="pass --data PATH"):
        resolve_data(cfg, str(tmp_path / "missing"), tmp_path)
    assert 'RUBIK_DATA_OPTION="DATA=PATH' in (ROOT / "Makefile").read_text()


def test_no_placeholders_left():
    assert "<github owner>" not in (ROOT / "hubconf.py").read_text()


def test_report_describes_the_cpu_preset():
    """REPORT.md's description of the `cpu` reference run is the preset's (epochs, images)."""
    import yaml

    preset = yaml.safe_load((ROOT / "rubik/presets/cpu.yaml").read_text())
    epochs, images = preset["training"]["epochs"], 10 * preset["data"]["train_per_class"]
    report = (ROOT / "REPORT.md").read_text()
    said = re.findall(r"`cpu`\s+reference run \((\d+)\s+epochs(?: on)? ([\d,]+) images", report)
    assert said and set(said) == {(str(epochs), f"{images:,}")}, said


@pytest.mark.slow
def test_study_report_regenerates_committed_outputs_byte_for_byte(tmp_path):
    """`rubik study report` (as `make figures` runs it) twice into new folders: the same bytes each
    time, and the committed tables and figures' bytes (a clean clone's `make figures` leaves git clean)."""
    sweeps = [str(ROOT / "data/results/imagenette_longer/sweep"), str(ROOT / "data/results/imagenette_long/sweep")]
    outs = []
    for k in range(2):
        out = tmp_path / f"report{k}"
        p = subprocess.run([sys.executable, "-m", "rubik", "study", "report", *sweeps, "--out", str(out)],
                           capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert p.returncode == 0, p.stderr[-3000:]
        outs.append(out)
    committed = ROOT / "data/results/imagenette_longer"
    for sub in ("tables", "figures"):
        names = sorted(x.name for x in (outs[0] / sub).iterdir())
        assert names
        for name in names:
            assert filecmp.cmp(outs[0] / sub / name, outs[1] / sub / name, shallow=False), f"{sub}/{name} differs"
            assert filecmp.cmp(outs[0] / sub / name, committed / sub / name, shallow=False), \
                f"{sub}/{name} differs from the committed file (regenerate with `make figures`)"


def test_figures_are_written_without_versions_or_dates(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rubik.plots import save_figure

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    png, pdf = save_figure(fig, "f", tmp_path)
    plt.close(fig)
    assert b"matplotlib" not in png.read_bytes().lower()
    data = pdf.read_bytes()
    assert b"CreationDate" not in data and b"matplotlib" not in data.lower()


def test_readme_costs_are_what_sweep_init_prints():
    from rubik.config import TrainConfig
    from rubik.data import DataConfig
    from rubik.sweep import sample_twists
    from rubik.sweep_cli import B0_224_H200_IMAGES_PER_S, training_budget

    samples = sample_twists(100, "efficientnet_b0", seed=0, num_classes=100)
    line = training_budget(samples, TrainConfig(data=DataConfig(train_per_class=500), recipe="efficientnet").to_dict(),
                           100)
    assert "105 trials x 450 epochs = 47250 trial-epochs" in line and ">= 51.7 GPU-hours" in line, line
    assert "47,250 trial-epochs, >= 51.7 GPU-hours" in README
    b0_hours = 1_281_167 * 450 / B0_224_H200_IMAGES_PER_S / 3600
    assert f">= {b0_hours:.1f} GPU-hours" in README and f"{B0_224_H200_IMAGES_PER_S:,} img/s" in README
    assert f"B0 224 px, synthetic: ours / timm | {B0_224_H200_IMAGES_PER_S:,} /" in (ROOT / "benchmarks/GPU_NOTES.md").read_text()


def test_progress_bar_is_plain_without_ipywidgets():
    import importlib.util

    import tqdm

    from rubik._progress import tqdm as bar

    if importlib.util.find_spec("ipywidgets") is None:
        assert bar is tqdm.tqdm
    for path in (ROOT / "rubik").rglob("*.py"):
        if path.name != "_progress.py":
            assert "from tqdm.auto import" not in path.read_text(), path



def test_import_rubik_beside_a_clone_named_rubik_finds_the_clone(tmp_path):
    """Issue 37.8, as README says: in the folder that holds a clone named rubik, `import rubik` finds the
    clone (a namespace package: no __file__, no create_model); inside the clone or in any other folder it
    finds the package."""
    (tmp_path / "beside" / "rubik").parent.mkdir()
    (tmp_path / "beside" / "rubik").symlink_to(ROOT, target_is_directory=True)
    code = "import rubik; print(rubik.__file__, hasattr(rubik, 'create_model'))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}

    def where(cwd):
        p = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                           env=env)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()

    assert where(tmp_path / "beside") == ["None", "False"]
    assert where(ROOT) == [str(ROOT / "rubik" / "__init__.py"), "True"]
    assert where(tmp_path)[1] == "True"   # the installed package
    flat = " ".join(README.split())
    assert "a clone named `rubik` shadows the package" in flat
    assert "`AttributeError: module 'rubik' has no attribute 'create_model'`" in flat


def _help_texts(parser, path):
    import argparse

    for text in (parser.description, parser.epilog):
        if text:
            yield path, text
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            yield path + [action.dest], action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield path + [choice.dest], choice.help or ""
            for name, child in action.choices.items():
                yield from _help_texts(child, path + [name])


def test_help_texts_are_plain_text():
    """Issue 37.8: `rubik --help` and every command's help without reST/markdown backticks."""
    import importlib

    from rubik.cli import COMMANDS, build_parser

    parser, sub = build_parser()
    texts = list(_help_texts(parser, ["rubik"]))
    for name, (module, _) in COMMANDS.items():
        importlib.import_module(module).add_arguments(sub.choices[name])
        texts += list(_help_texts(sub.choices[name], ["rubik", name]))
    assert len(texts) > 100
    assert [(" ".join(map(str, where)), text) for where, text in texts if "`" in text] == []
