"""``rubik reproduce``: run the notebooks in order with papermill for a preset.

    rubik reproduce --preset smoke                       # seconds, synthetic data
    rubik reproduce --preset cpu --data ../shared/datasets/imagenette
    rubik reproduce --preset cpu --data ... --from 03    # resume at 03_frontier
    rubik reproduce --preset cpu --data ... -p n_models=4 -p epochs=1

Each run writes ``runs/<preset>/``: the executed notebooks, ``figures/`` (PNG +
PDF), ``tables/`` (CSV + Markdown), ``logs/`` (one log per notebook), the
resolved ``config.yaml`` and whatever the notebooks train (``sweep/``...).

A preset (``rubik/presets/<name>.yaml``) is a flat mapping of notebook
parameters on top of ``_base.yaml`` (``extends: other`` chains presets). The
runner passes every notebook the parameters its ``parameters`` cell declares.

The second half of this module holds the small helpers the notebooks share
(run directory, data config, synthetic data), so the notebooks stay thin.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

PRESET_DIR = Path(__file__).resolve().parent / "presets"
REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PAPER_DIR = REPO_ROOT / "data" / "paper"
RESULTS_DIR = REPO_ROOT / "data" / "results"
DATA_ENV = "RUBIK_DATA_DIR"
# parameters every notebook may receive from the runner (besides the preset's keys)
RUN_KEYS = ("preset", "run_dir")


class ReproduceError(RuntimeError):
    """A user-facing error (bad preset, missing data, failing notebook)."""


# =========================================================================== presets

def list_presets() -> list[str]:
    """Names of the shipped presets (``rubik/presets/*.yaml`` without ``_base``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def _read_yaml(path: Path) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ReproduceError(f"preset file {path} must be a mapping of parameters, got {type(data).__name__}")
    return data


def _preset_path(name: str | os.PathLike) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = PRESET_DIR / f"{name}.yaml"
    if cand.exists() and not str(name).startswith("_"):
        return cand
    raise ReproduceError(f"unknown preset {str(name)!r}: choose one of {', '.join(list_presets())} "
                         f"(or give the path of a .yaml file)")


def parse_value(text: str) -> Any:
    """YAML-parse a command-line value (``4`` -> 4, ``[0, 1]`` -> list, ``null`` -> None)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: Iterable[str] | dict | None) -> dict:
    """``["epochs=2", "tvg_seeds=[0, 1]"]`` -> ``{"epochs": 2, "tvg_seeds": [0, 1]}``."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in items:
        if "=" not in item:
            raise ReproduceError(f"bad parameter {item!r}: use -p key=value (value parsed as YAML)")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def load_preset(name: str, overrides: Iterable[str] | dict | None = None, *, strict: bool = True) -> dict:
    """The resolved parameters of preset ``name`` (``_base.yaml`` <- ``extends`` chain
    <- the preset <- ``overrides``). With ``strict``, unknown override keys are an error."""
    base = _read_yaml(PRESET_DIR / "_base.yaml")
    chain, seen = [], set()
    path = _preset_path(name)
    while True:
        data = _read_yaml(path)
        chain.append(data)
        parent = data.get("extends")
        if not parent:
            break
        if parent in seen:
            raise ReproduceError(f"preset {name!r}: 'extends' loop through {parent!r}")
        seen.add(parent)
        path = _preset_path(parent)
    cfg = dict(base)
    for data in reversed(chain):
        cfg.update({k: v for k, v in data.items() if k != "extends"})
    ov = parse_overrides(overrides)
    unknown = sorted(set(ov) - set(cfg) - set(RUN_KEYS))
    if strict and unknown:
        raise ReproduceError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(cfg))}")
    cfg.update(ov)
    cfg["preset"] = Path(name).stem if str(name).endswith((".yaml", ".yml")) else str(name)
    return cfg


# =========================================================================== notebooks

def list_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) in order."""
    d = Path(notebooks_dir or NOTEBOOK_DIR)
    nbs = sorted(p for p in d.glob("[0-9][0-9]_*.ipynb"))
    if not nbs:
        raise ReproduceError(f"no notebooks (NN_name.ipynb) in {d}")
    return nbs


def _matches(nb: Path, key: str) -> bool:
    key = str(key).strip().removesuffix(".ipynb")
    num, _, name = nb.stem.partition("_")
    return key in (nb.stem, num, name) or (key.isdigit() and int(key) == int(num))


def select_notebooks(notebooks: Sequence[Path], start: str | None = None,
                     only: Sequence[str] | None = None) -> list[Path]:
    """Notebooks from ``start`` on (``"03"``, ``"3"``, ``"frontier"`` or
    ``"03_frontier"``), or exactly those in ``only``."""
    nbs = list(notebooks)
    names = ", ".join(n.stem for n in nbs)
    if only:
        out = []
        for k in only:
            hit = [n for n in nbs if _matches(n, k)]
            if not hit:
                raise ReproduceError(f"no notebook matches {k!r} (have {names})")
            out += [h for h in hit if h not in out]
        return sorted(out)
    if start:
        idx = [i for i, n in enumerate(nbs) if _matches(n, start)]
        if not idx:
            raise ReproduceError(f"--from {start!r} matches no notebook (have {names})")
        nbs = nbs[idx[0]:]
    return nbs


def notebook_parameters(notebook: Path) -> list[str]:
    """Names declared in the notebook's ``parameters`` cell."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            names = []
            for line in cell.source.splitlines():
                line = line.split("#", 1)[0].strip()
                if "=" in line and not line.startswith(("(", "[", "{")):
                    lhs = line.split("=", 1)[0].strip()
                    if lhs.isidentifier():
                        names.append(lhs)
            return names
    return []


# =========================================================================== data

def needs_data(cfg: dict) -> bool:
    return str(cfg.get("data_dir")) != "synthetic"


def resolve_data(cfg: dict, data: str | None, run_dir: Path) -> dict:
    """Fill ``data_dir`` (``--data`` > preset > ``$RUBIK_DATA_DIR``), check it, or
    generate the synthetic data set for ``data_dir: synthetic``."""
    cfg = dict(cfg)
    if data:
        cfg["data_dir"] = str(data)
    if cfg.get("data_dir") == "synthetic":
        root = run_dir / "data"
        make_synthetic_imagefolder(root, classes=int(cfg.get("synthetic_classes", 4)),
                                   train_per_class=int(cfg.get("train_per_class") or 16),
                                   val_per_class=int(cfg.get("val_per_class") or 8),
                                   size=max(32, int(cfg.get("base_resolution") or 32)),
                                   seed=int(cfg.get("seed") or 0))
        cfg["data_dir"] = str(root.resolve())
        return cfg
    if not cfg.get("data_dir"):
        env = os.environ.get(DATA_ENV)
        if not env:
            raise ReproduceError(
                f"preset {cfg.get('preset')!r} needs a data set ({cfg.get('dataset')}): pass --data PATH "
                f"(an ImageFolder root with train/ and val/), set {DATA_ENV}, or use --preset smoke")
        cfg["data_dir"] = env
    root = Path(cfg["data_dir"]).expanduser()
    if not root.is_dir():
        raise ReproduceError(f"data path {str(root)!r} does not exist (preset {cfg.get('preset')!r}, "
                             f"dataset {cfg.get('dataset')}); pass --data PATH")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise ReproduceError(f"data path {str(root)!r} has no {' or '.join(missing)}/ folder: expected an "
                             f"ImageFolder root with train/<class>/*.JPEG and val/<class>/*.JPEG")
    cfg["data_dir"] = str(root.resolve())
    if cfg.get("manifest") and not Path(cfg["manifest"]).expanduser().is_file():
        raise ReproduceError(f"manifest {cfg['manifest']!r} does not exist")
    if cfg.get("imagenet_dir") is None and cfg.get("dataset") in ("imagenet", "imagenet100"):
        cfg["imagenet_dir"] = cfg["data_dir"]
    return cfg


def make_synthetic_imagefolder(root, classes: int = 4, train_per_class: int = 16, val_per_class: int = 8,
                               size: int = 32, seed: int = 0) -> Path:
    """A tiny learnable ImageFolder (``train/``, ``val/``): each class is a colour
    and a shape on a noisy background. Idempotent: reuses an existing set of the
    same shape."""
    import numpy as np
    from PIL import Image

    root = Path(root)
    stamp = root / "SYNTHETIC.json"
    spec = dict(classes=classes, train_per_class=train_per_class, val_per_class=val_per_class,
                size=size, seed=seed)
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return root
    rng = np.random.default_rng(seed)
    palette = np.array([[220, 40, 40], [40, 160, 60], [40, 80, 220], [230, 200, 40],
                        [160, 60, 200], [40, 200, 210], [240, 130, 30], [120, 120, 120]])
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            d = root / split / f"class_{c:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.normal(110, 35, (size, size, 3))
                cx, cy, rad = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
                if c % 2 == 0:
                    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < rad ** 2
                else:
                    mask = (abs(xx - cx) < rad) & (abs(yy - cy) < rad)
                img[mask] = palette[c % len(palette)] + rng.normal(0, 20, (mask.sum(), 3))
                Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(d / f"{split}_{c}_{i:03d}.png")
    stamp.write_text(json.dumps(spec))
    return root


# =========================================================================== runner

def _fmt_s(s: float) -> str:
    return f"{s:.1f} s" if s < 90 else f"{s / 60:.1f} min"


@dataclass
class NotebookResult:
    name: str
    output: Path
    log: Path
    seconds: float
    ok: bool
    error: str | None = None


def run(preset: str, *, data: str | None = None, start: str | None = None, only: Sequence[str] | None = None,
        overrides: Iterable[str] | dict | None = None, out_dir: str | os.PathLike | None = None,
        notebooks_dir: str | os.PathLike | None = None, kernel: str | None = None,
        timeout: int | None = None, echo: Callable[[str], Any] = print) -> list[NotebookResult]:
    """Execute the notebooks of ``preset`` in order into ``out_dir`` (default
    ``runs/<preset>``). Raises :class:`ReproduceError` at the first failing
    notebook (naming it, its executed copy and its log)."""
    import papermill as pm

    cfg = load_preset(preset, overrides)
    run_dir = Path(out_dir or Path("runs") / cfg["preset"]).resolve()
    notebooks = select_notebooks(list_notebooks(notebooks_dir), start=start, only=only)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_data(cfg, data, run_dir)
    cfg["run_dir"] = str(run_dir)
    for sub in ("figures", "tables", "logs"):
        (run_dir / sub).mkdir(exist_ok=True)
    cfg_file = run_dir / "config.yaml"
    if cfg_file.exists() and (start or only):
        old = yaml.safe_load(cfg_file.read_text()) or {}
        changed = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
        if changed:
            echo(f"note: parameters differ from the earlier run in {run_dir}: {', '.join(changed)}")
    cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=False))

    echo(f"rubik reproduce: preset {cfg['preset']!r} ({cfg.get('description', '')})")
    echo(f"  run dir : {run_dir}")
    echo(f"  data    : {cfg['data_dir']}")
    echo(f"  notebooks: {', '.join(n.stem for n in notebooks)}")
    results, t_all = [], time.perf_counter()
    for i, nb in enumerate(notebooks, 1):
        out_nb, log = run_dir / nb.name, run_dir / "logs" / f"{nb.stem}.log"
        declared = notebook_parameters(nb)
        params = {k: cfg[k] for k in declared if k in cfg}
        echo(f"[{i}/{len(notebooks)}] {nb.stem} ... started {time.strftime('%H:%M:%S')}")
        t0 = time.perf_counter()
        err = None
        with open(log, "w") as lf:
            lf.write(f"# {nb.stem} ({cfg['preset']}) {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                     f"# parameters: {json.dumps(params, default=str)}\n")
            lf.flush()
            try:
                pm.execute_notebook(str(nb), str(out_nb), parameters=params, cwd=str(run_dir),
                                    kernel_name=kernel, progress_bar=False, log_output=False,
                                    stdout_file=lf, stderr_file=lf, execution_timeout=timeout,
                                    request_save_on_cell_execute=True)
            except pm.PapermillExecutionError as e:
                err = f"cell {e.cell_index + 1 if isinstance(e.cell_index, int) else '?'}: {e.ename}: {e.evalue}"
            except Exception as e:  # kernel missing, timeout, bad notebook...
                hint = ""
                if type(e).__name__ == "NoSuchKernel":
                    hint = " (install one: python -m ipykernel install --user --name python3)"
                err = f"{type(e).__name__}: {e}{hint}"
            if err:
                lf.write(f"\n# FAILED: {err}\n")
        dt = time.perf_counter() - t0
        results.append(NotebookResult(nb.stem, out_nb, log, dt, err is None, err))
        if err:
            echo(f"[{i}/{len(notebooks)}] {nb.stem} FAILED after {_fmt_s(dt)}")
            num = nb.stem.split("_", 1)[0]
            raise ReproduceError(
                f"notebook {nb.stem} failed: {err}\n"
                f"  executed notebook (with the traceback): {out_nb}\n"
                f"  log: {log}\n"
                f"  fix it, then resume with: rubik reproduce --preset {cfg['preset']} --from {num}"
                + (f" --data {cfg['data_dir']}" if needs_data(cfg) else ""))
        echo(f"[{i}/{len(notebooks)}] {nb.stem} done in {_fmt_s(dt)}")
    total = time.perf_counter() - t_all
    n_fig = len(list((run_dir / "figures").glob("*.png")))
    n_tab = len(list((run_dir / "tables").glob("*.csv")))
    echo(f"all {len(results)} notebooks done in {_fmt_s(total)}: {n_fig} figures in {run_dir / 'figures'}, "
         f"{n_tab} tables in {run_dir / 'tables'}")
    (run_dir / "timings.json").write_text(json.dumps(
        {r.name: round(r.seconds, 2) for r in results} | {"total": round(total, 2)}, indent=1))
    return results


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="cpu",
                        help=f"parameter set: {', '.join(list_presets())} or a .yaml path (default: cpu)")
    parser.add_argument("--data", default=None, help=f"data set root (ImageFolder train/ val/); default: "
                        f"the preset's data_dir or ${DATA_ENV}")
    parser.add_argument("--from", dest="start", default=None, metavar="NOTEBOOK",
                        help="resume at this notebook (03, 3, frontier or 03_frontier)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK", help="run only these notebooks")
    parser.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset parameter (value parsed as YAML); repeatable")
    parser.add_argument("--out", default=None, help="run directory (default: runs/<preset>)")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel (default: the notebooks' python3)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--list", action="store_true", help="list presets and notebooks, then exit")
    parser.add_argument("--show", action="store_true", help="print the resolved parameters, then exit")


def main(args) -> int:
    try:
        if args.list:
            for name in list_presets():
                desc = load_preset(name).get("description", "")
                print(f"{name:12s} {desc}")
            print("notebooks: " + ", ".join(n.stem for n in list_notebooks()))
            return 0
        if args.show:
            print(yaml.safe_dump(load_preset(args.preset, args.params), sort_keys=False), end="")
            return 0
        run(args.preset, data=args.data, start=args.start, only=args.only, overrides=args.params,
            out_dir=args.out, kernel=args.kernel, timeout=args.timeout)
        return 0
    except ReproduceError as e:
        print(f"rubik reproduce: error: {e}", file=sys.stderr)
        return 1


# =========================================================================== notebook helpers

class RunDir:
    """What a notebook needs of its run directory: where to put figures and
    tables, and a one-liner to save-and-show each.

        run = RunDir(run_dir)
        run.figure(plots.plot_frontier(df), "fig1_frontier")
        run.table(df, "sweep_results")
    """

    def __init__(self, run_dir: str | os.PathLike | None = None):
        self.root = Path(run_dir or Path("runs") / "interactive").resolve()
        self.figures = self.root / "figures"
        self.tables = self.root / "tables"
        for d in (self.root, self.figures, self.tables):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, *parts) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def figure(self, fig, name: str, show: bool = True):
        """Save ``fig`` as figures/<name>.png/.pdf, display it (in a notebook), close it."""
        import matplotlib.pyplot as plt

        from rubik.plots import save_figure

        paths = save_figure(fig, name, self.figures)
        if show:
            _display(fig)
        plt.close(fig)
        return paths

    def table(self, df, name: str, show: bool = True, floatfmt: str = ".4g"):
        """Save ``df`` as tables/<name>.csv/.md and display it."""
        from rubik.plots import save_table

        save_table(df, name, self.tables, floatfmt=floatfmt)
        if show:
            _display(df)
        return df

    def __repr__(self):
        return f"RunDir({str(self.root)!r})"


def _display(obj):
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(obj)
            return
    except ImportError:
        pass
    if not hasattr(obj, "savefig"):
        print(obj)


def data_config(data_dir: str | None, dataset: str = "imagenette", *, train_per_class=None, val_per_class=None,
                manifest=None, pipeline: str = "auto", workers: int = 2, seed: int = 0, cache_dir=None):
    """The ``rubik.data.DataConfig`` for the notebooks' parameters."""
    from rubik.data import DataConfig

    return DataConfig(root=data_dir, name=dataset, train_per_class=train_per_class,
                      val_per_class=val_per_class, manifest=manifest, pipeline=pipeline,
                      workers=workers, seed=seed, cache_dir=cache_dir)


def paper_table(name: str) -> "pandas.DataFrame":  # noqa: F821
    """``data/paper/<name>.csv`` as a DataFrame."""
    import pandas as pd

    p = PAPER_DIR / (name if name.endswith(".csv") else f"{name}.csv")
    if not p.exists():
        raise FileNotFoundError(f"{p} not found (have: {', '.join(x.name for x in PAPER_DIR.glob('*.csv'))})")
    return pd.read_csv(p)


def measured_results(results_dir: str | os.PathLike | None = None) -> "pandas.DataFrame":  # noqa: F821
    """Every CSV under ``results_dir`` (default ``data/results/``) concatenated, with a
    ``file`` column; an empty frame if there are none."""
    import pandas as pd

    d = Path(results_dir) if results_dir else RESULTS_DIR
    frames = []
    for p in sorted(d.glob("**/*.csv")) if d.is_dir() else []:
        try:
            frames.append(pd.read_csv(p).assign(file=str(p.relative_to(d))))
        except Exception:  # a malformed file is skipped, not fatal
            continue
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
