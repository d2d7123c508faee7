"""Build the committed notebooks (``NN_name.ipynb``) from their sources, the jupytext percent-format
scripts beside them (``NN_name.py``: real Python that linters, ``duplicates`` and import tracing see).

    python notebooks/build_notebooks.py          # rewrite every NN_name.ipynb from NN_name.py
    python notebooks/build_notebooks.py --check  # exit 1 if a committed notebook differs from its script

Edit the ``.py`` (in any editor, or in JupyterLab with jupytext's pairing), then rebuild. The
notebooks are thin: each cell calls ``rubik`` (the computations) and ``rubik.plots`` (the figures);
they are committed without outputs, and ``rubik reproduce`` executes them with papermill into
``runs/<preset>/``. The cell tagged ``parameters`` holds the ``cpu`` preset's values (so a notebook
opened by hand runs the default study; ``rubik reproduce`` overrides them): the build checks them
against ``rubik/presets``, so a preset change that the notebooks miss fails ``--check``. Cell ids
are stable (``<notebook>-<n>``) so rebuilding gives clean diffs.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rubik.reproduce import KERNEL_DISPLAY_NAME, KERNEL_NAME, load_preset  # noqa: E402

#: what a parameters cell's names default to when a notebook is opened by hand (run_dir None:
#: runs/interactive at the repository root, rubik.reproduce.RunDir)
DEFAULTS = {**load_preset("cpu"), "run_dir": None}


def sources(folder: Path = HERE) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def parameters(nb) -> dict:
    """The ``name = literal`` assignments of the notebook's one cell tagged ``parameters``."""
    tagged = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{len(tagged)} cells tagged 'parameters' (need exactly one)")
    out = {}
    for node in ast.parse(tagged[0].source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"the parameters cell may only hold `name = literal` lines, got {ast.unparse(node)!r}")
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def build(src: Path) -> nbformat.NotebookNode:
    """The notebook of one percent script: project kernel, stable cell ids, parameters checked."""
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata = {
        "kernelspec": {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"},
        "language_info": {"name": "python"},
    }
    prefix = src.stem.split("_")[0]
    for i, cell in enumerate(nb.cells):
        cell.id = f"{prefix}-{i:02d}"
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for name, value in parameters(nb).items():
        if name not in DEFAULTS:
            raise ValueError(f"{src.name}: parameter {name!r} is in no preset (add it to a section of rubik/preset.py and to rubik/presets/_base.yaml)")
        if value != DEFAULTS[name]:
            raise ValueError(f"{src.name}: parameter {name} = {value!r}, but the cpu preset says {DEFAULTS[name]!r}")
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if a notebook differs from its script")
    ap.add_argument("--out", default=str(HERE), help="output folder (default: notebooks/)")
    args = ap.parse_args(argv)
    stale = []
    for src in sources():
        try:
            text = nbformat.writes(build(src)) + "\n"
        except ValueError as e:
            print(f"build_notebooks: error: {e}", file=sys.stderr)
            return 2
        path = Path(args.out) / f"{src.stem}.ipynb"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"stale notebooks (run python notebooks/build_notebooks.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
