"""What the notebooks share, and ``rubik reproduce``'s public face.

The notebooks (``notebooks/NN_*.py``) stay thin: they call the helpers here (their run directory,
data config and synthetic data, a sweep's training template) and the study's logic beside the
sweep (``rubik.frontier``, ``rubik.formula``, ``rubik.tiny_vs_giant``, ``rubik.paper``). The rest of
``rubik reproduce`` lives by idea, and is re-exported here so ``from rubik import reproduce as R``
reaches all of it:

* ``rubik.preset``: the presets, one dataclass per section, their loader and ``-p`` overrides
  (``load_preset``, ``Preset``);
* ``rubik.runner``: the papermill runner (``run``, notebook selection, the Jupyter kernel,
  timings, progress squashing) and the ``rubik reproduce`` command; its names are imported on
  first use.
"""
from __future__ import annotations

import json
import os
import shutil
from importlib import import_module
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from rubik.data import DataConfig, DataError, build_imagenet100_manifest, resolve_root
from rubik.errors import ReproduceError
from rubik.preset import (PRESET_DIR, RUN_KEYS, Preset, check_parameter, list_presets, load_preset, parse_overrides,
                          parse_value)
from rubik.sweep import init_sweep

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "RUBIK_DATA_DIR"
# data a notebook opened by hand falls back to: the Makefile's default, beside the repository
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets" / "imagenette"
RUN_DIR_ENV = "RUBIK_RUN_DIR"   # run directory of notebooks opened by hand (default: runs/interactive)

#: ``rubik.runner``'s names, re-exported on first use (``__getattr__``): the runner imports this
#: module (``resolve_data``), and a notebook kernel importing this module needs none of it
_RUNNER = ("NOTEBOOK_DIR", "KERNEL_NAME", "KERNEL_DISPLAY_NAME", "KERNEL_ARGS", "NotebookResult", "list_notebooks",
           "select_notebooks", "notebook_parameters", "needs_data", "ensure_kernel", "evaluates_released_weights",
           "check_run_device", "fetch_released_weights", "squash_carriage_returns", "squash_progress", "run",
           "add_arguments", "main")


__all__ = ["REPO_ROOT", "DATA_ENV", "DEFAULT_DATA_DIR", "RUN_DIR_ENV", "ReproduceError",
           # the helpers the notebooks call
           "RunDir", "data_config", "train_template", "template_from", "init_sweep_dir", "make_synthetic_imagefolder",
           "find_data_dir", "resolve_data",
           # rubik.preset
           "PRESET_DIR", "RUN_KEYS", "Preset", "check_parameter", "list_presets", "load_preset", "parse_overrides",
           "parse_value",
           # rubik.runner
           *_RUNNER]


def __getattr__(name):
    if name in _RUNNER:
        value = getattr(import_module("rubik.runner"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_RUNNER))


# =========================================================================== data


def _data_option() -> str:
    """How the caller names the data path: ``--data PATH``, or what ``$RUBIK_DATA_OPTION`` says
    (the Makefile sets ``DATA=PATH``: a make user passes ``make reproduce DATA=...``)."""
    return os.environ.get("RUBIK_DATA_OPTION") or "--data PATH"

def resolve_data(cfg: dict, data: str | None, run_dir: Path, *, before_reading: Callable[[dict], Any] | None = None) -> dict:
    """Fill ``data_dir`` (``--data`` > preset > ``$RUBIK_DATA_DIR``), check it, or
    generate the synthetic data set for ``data_dir: synthetic``. ``before_reading(cfg)`` runs once
    the path is known to exist, before anything reads it (the ImageNet-100 subset is drawn here)."""
    cfg = dict(cfg)
    source = f"preset {cfg.get('preset')!r}'s data_dir" if cfg.get("data_dir") else None
    if data:
        cfg["data_dir"], source = str(data), "--data"
    if cfg.get("data_dir") == "synthetic":
        root = run_dir / "data"
        make_synthetic_imagefolder(root, classes=int(cfg.get("synthetic_classes", 4)),
                                   train_per_class=int(cfg.get("train_per_class") or 16),
                                   val_per_class=int(cfg.get("val_per_class") or 8),
                                   size=max(32, int(cfg.get("base_resolution") or 32)),
                                   seed=int(cfg.get("seed") or 0))
        cfg["data_dir"] = str(root.resolve())
        cfg["cache_dir"] = cfg.get("cache_dir") or str((run_dir / "cache").resolve())
        return cfg
    if not cfg.get("data_dir"):
        env = os.environ.get(DATA_ENV)
        if not env:
            raise ReproduceError(
                f"preset {cfg.get('preset')!r} needs a data set ({cfg.get('dataset')}): pass {_data_option()} "
                f"(an ImageFolder root with train/ and val/), set {DATA_ENV}, or use --preset smoke")
        cfg["data_dir"], source = env, f"${DATA_ENV}"
    root = Path(cfg["data_dir"]).expanduser()
    fix = f"pass {_data_option()}" + (f" or change ${DATA_ENV}" if source == f"${DATA_ENV}" else "")
    if not root.is_dir():
        raise ReproduceError(f"data path {str(root)!r} (from {source}) does not exist (preset {cfg.get('preset')!r}, "
                             f"dataset {cfg.get('dataset')}); {fix}")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise ReproduceError(f"data path {str(root)!r} (from {source}) has no {' or '.join(missing)}/ folder: "
                             f"expected an ImageFolder root with train/<class>/*.JPEG and val/<class>/*.JPEG; {fix}")
    cfg["data_dir"] = str(root.resolve())
    if cfg.get("manifest") and not Path(cfg["manifest"]).expanduser().is_file():
        raise ReproduceError(f"manifest {cfg['manifest']!r} does not exist")
    if before_reading is not None:
        before_reading(cfg)
    if cfg.get("dataset") == "imagenet100" and not cfg.get("manifest"):
        # the paper's ImageNet-100: 100 random classes x 500 random train images, drawn from the
        # seed once and recorded in the run directory (pass -p manifest=PATH to reuse a subset)
        path = run_dir / "imagenet100_manifest.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            build_imagenet100_manifest(cfg["data_dir"], str(path), train_per_class=int(cfg.get("train_per_class") or 500),
                                       seed=int(cfg.get("seed") or 0))
        cfg["manifest"] = str(path)
    if cfg.get("imagenet_dir") is None and cfg.get("dataset") in ("imagenet", "imagenet100"):
        cfg["imagenet_dir"] = cfg["data_dir"]
    return cfg


def find_data_dir(data_dir=None, dataset: str = "imagenette", *, required: bool = True) -> str | None:
    """The data root of a notebook opened by hand, found as the command line finds it: ``data_dir``
    (the parameters cell), else ``$RUBIK_DATA_DIR``, else the Makefile's default
    ``../shared/datasets/imagenette`` beside the repository (Imagenette only). Returns the resolved
    root; when there is none, ``None`` if not ``required``, else a one-line error saying what to set."""
    root = data_dir or os.environ.get(DATA_ENV)
    source = "data_dir" if data_dir else (f"${DATA_ENV}" if root else None)
    if not root and dataset == "imagenette" and DEFAULT_DATA_DIR.is_dir():
        root = str(DEFAULT_DATA_DIR)
    if not root:
        if not required:
            return None
        raise ReproduceError(f"no data for dataset {dataset!r}: set data_dir in the parameters cell, or {DATA_ENV} "
                             f"(`%env {DATA_ENV}=/path/to/{dataset}`), to an ImageFolder root with train/ and val/")
    try:
        return str(resolve_root(DataConfig(root=str(root), name=dataset)).resolve())
    except DataError as e:
        where = f"; the path came from {source}" if source else ""
        raise ReproduceError(f"{e}{where} (set data_dir in the parameters cell, or {DATA_ENV})") from None


def make_synthetic_imagefolder(root, classes: int = 4, train_per_class: int = 16, val_per_class: int = 8,
                               size: int = 32, seed: int = 0) -> Path:
    """A tiny learnable ImageFolder (``train/``, ``val/``): each class is a colour
    and a shape on a noisy background. Idempotent: reuses an existing set of the
    same shape."""
    root = Path(root)
    stamp = root / "SYNTHETIC.json"
    spec = dict(classes=classes, train_per_class=train_per_class, val_per_class=val_per_class,
                size=size, seed=seed)
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return root
    for split in ("train", "val"):  # a set of another shape: start over
        shutil.rmtree(root / split, ignore_errors=True)
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



# =========================================================================== notebook helpers

class RunDir:
    """What a notebook needs of its run directory: where to put figures and
    tables, and a one-liner to save-and-show each.

        run = RunDir(run_dir)
        run.figure(plots.plot_frontier(df), "fig1_frontier")
        run.table(df, "sweep_results")
    """

    def __init__(self, run_dir: str | os.PathLike | None = None):
        # a notebook opened by hand (run_dir None) writes under the repository's ignored runs/
        self.root = Path(run_dir or os.environ.get(RUN_DIR_ENV) or REPO_ROOT / "runs" / "interactive").resolve()
        self.figures = self.root / "figures"
        self.tables = self.root / "tables"
        for d in (self.root, self.figures, self.tables):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, *parts) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def require(self, *parts, made_by: str) -> Path:
        """``root/parts``, or a one-line error naming the notebook that makes it."""
        p = self.root.joinpath(*parts)
        if not p.exists():
            raise ReproduceError(f"{p} does not exist: run notebook {made_by} first (with the same run_dir)")
        return p

    def figure(self, fig, name: str, show: bool = True):
        """Save ``fig`` as figures/<name>.png/.pdf, display it (in a notebook), close it.
        Returns None, so a cell ending with it shows the figure once."""
        import matplotlib.pyplot as plt

        from rubik.plots import save_figure

        save_figure(fig, name, self.figures)
        if show:
            _display(fig)
        plt.close(fig)

    def table(self, df, name: str, show: bool = True, floatfmt: str = ".4g"):
        """Save ``df`` as tables/<name>.csv/.md and display it."""
        from rubik.plots import save_table

        save_table(df, name, self.tables, floatfmt=floatfmt)
        if show:
            _display(df)

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


# --------------------------------------------------------------------------- study helpers
# Small glue used by the notebooks; the science lives in rubik.sweep / frontier / formula /
# tiny_vs_giant, the paper's numbers and model names in rubik.paper.


def train_template(*, data_dir, dataset="imagenette", train_per_class=None, val_per_class=None, manifest=None,
                   pipeline="auto", workers=2, recipe="proxy", epochs=None, batch_size=None, seed=0,
                   device="auto", threads=None, cache_dir=None):
    """The ``TrainConfig`` every trial of a sweep starts from (no progress output).

    ``recipe`` is a recipe name or a mapping ``{name: proxy, eval_every: 100, ...}`` (a named
    recipe with some fields changed); a mapping is spelled out in full so the sweep records it.
    """
    from rubik.train import TrainConfig, resolve_recipe

    if isinstance(recipe, dict):
        try:
            recipe = resolve_recipe(recipe)
        except (TypeError, ValueError) as e:
            raise ReproduceError(f"recipe {recipe!r}: {e}") from None

    data = data_config(data_dir, dataset, train_per_class=train_per_class, val_per_class=val_per_class,
                       manifest=manifest, pipeline=pipeline, workers=workers, seed=seed, cache_dir=cache_dir)
    import dataclasses

    schedule = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    if schedule:   # the schedule is the recipe's (a bad value is refused by rubik.config.validate)
        recipe = dataclasses.replace(resolve_recipe(recipe), **schedule)
    return TrainConfig(data=data, recipe=recipe, seed=seed, device=device, threads=threads, progress=False)


def template_from(parameters: dict, **overrides):
    """``train_template`` with each of its arguments taken by name from ``parameters`` (a resolved
    preset, or a notebook's parameters: ``globals()``), ``overrides`` winning: the sweep template
    is spelled out once, here, not in every notebook that starts a sweep."""
    import inspect

    names = inspect.signature(train_template).parameters
    return train_template(**{**{k: parameters[k] for k in names if k in parameters}, **overrides})


def init_sweep_dir(sweep_dir, samples, template, **kw):
    """``rubik.sweep.init_sweep`` with a hint when the directory holds a different sweep."""
    try:
        return init_sweep(sweep_dir, samples, template, **kw)
    except ValueError as e:
        raise ValueError(f"{e}\nThe run directory holds a sweep made with other parameters: run with another "
                         f"--out DIR, or delete {sweep_dir} to start over.") from None
