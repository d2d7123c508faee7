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
(run directory, data config, synthetic data, a sweep's training template), so the notebooks stay
thin; the study's logic lives beside the sweep: ``rubik.frontier``, ``rubik.formula``,
``rubik.tiny_vs_giant`` and ``rubik.paper`` (the paper's numbers and model names).
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from rubik.errors import UserError
from rubik.tiny_vs_giant import GIANT_PAIRS

PRESET_DIR = Path(__file__).resolve().parent / "presets"
REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DATA_ENV = "RUBIK_DATA_DIR"
# the Jupyter kernel the notebooks run in: this project's Python, registered inside its own
# environment (`ipykernel install --sys-prefix`), so the user's own kernels stay untouched
KERNEL_NAME = "rubik"
KERNEL_DISPLAY_NAME = "Python (rubik)"
# the kernel's own log at ERROR: it warns on every start that its local TCP sockets are not encrypted
# (ipykernel >= 7), which says nothing about the notebook; the notebooks' outputs and warnings are unaffected
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
# parameters every notebook may receive from the runner (besides the preset's keys)
RUN_KEYS = ("preset", "run_dir")


# data a notebook opened by hand falls back to: the Makefile's default, beside the repository
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets" / "imagenette"
RUN_DIR_ENV = "RUBIK_RUN_DIR"   # run directory of notebooks opened by hand (default: runs/interactive)


class ReproduceError(UserError, RuntimeError):
    """A user-facing error (bad preset, missing data, failing notebook)."""

    def _render_traceback_(self):  # IPython/Jupyter show the one line, not a traceback
        return [f"{type(self).__name__}: {self}"]


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


# Types of the parameters that are null in every shipped preset (the others take their types
# from the presets' values: ``parameter_types``)
NULL_DEFAULT_TYPES = {"data_dir": (str,), "manifest": (str,), "cache_dir": (str,), "ranges": (dict,),
                      "formula_levels": (dict,), "tvg_epochs": (int,), "imagenet_dir": (str,), "weights_dir": (str,),
                      "eval_per_class": (int,), "results_dir": (str,)}
POSITIVE = ("n_models", "epochs", "batch_size", "threads", "processes", "n_boot", "formula_min_points",
            "tvg_epochs", "train_per_class", "val_per_class", "eval_per_class", "nproc_per_node",
            "synthetic_classes")
CHOICES = {"sample_mode": ("uniform", "stratified"), "metric": ("top1", "best_top1", "ema_top1"),
           "tvg_tiny": ("released", "formula", "both"), "tvg_levels": ("tinynet", "c"),
           "pipeline": ("auto", "tensor", "folder"), "dataset": ("imagenette", "imagenet100", "imagenet", "folder")}
_TYPE_WORDS = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a mapping"}


def parameter_types() -> dict:
    """``{key: (allowed types, example value, null allowed)}`` over ``_base.yaml`` and every shipped
    preset: a parameter may take any type some preset gives it (``recipe``: a name or a mapping)."""
    seen: dict = {}
    for path in [PRESET_DIR / "_base.yaml"] + [PRESET_DIR / f"{n}.yaml" for n in list_presets()]:
        for k, v in _read_yaml(path).items():
            if k in ("extends", "description"):
                continue
            types, example, nullable = seen.get(k, ((), None, False))
            if v is None:
                nullable = True
            elif type(v) not in types:
                types, example = types + (type(v),), example if example is not None else v
            seen[k] = (types, example, nullable)
    for k, types in NULL_DEFAULT_TYPES.items():
        _, example, nullable = seen.get(k, ((), None, True))
        seen[k] = (types, example, nullable)
    return seen


def _yaml(value) -> str:
    """``value`` as it would be written after ``-p key=`` (one line of YAML)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def check_parameter(key: str, value) -> None:
    """ReproduceError unless ``value`` has a type the presets give ``key`` (ints pass for numbers,
    list items are checked too), is positive where it counts something, and is one of the choices
    where there are some. Run before the first notebook, so a typo costs nothing."""
    spec = parameter_types().get(key)
    if spec is None:
        return
    types, example, nullable = spec
    shown = f"-p {key}={_yaml(value)}"

    def fail(why):
        hint = ""
        if list in types and isinstance(value, str) and "," in value:
            hint = f"; write -p '{key}=[{value}]'"
        raise ReproduceError(f"{shown}: {why}{hint}")

    def fits(v, allowed):
        if isinstance(v, bool):
            return bool in allowed
        if isinstance(v, int) and float in allowed:
            return True
        return type(v) in allowed

    if value is None:
        if not nullable:
            fail(f"{key} cannot be null")
        return
    if not fits(value, types):
        like = f" (like {_yaml(example)})" if example is not None else ""
        fail(f"expected {' or '.join(_TYPE_WORDS.get(t, t.__name__) for t in types)}{like}, got "
             f"{_TYPE_WORDS.get(type(value), type(value).__name__)} {value!r}")
    if isinstance(value, list) and isinstance(example, list) and example:
        item_types = tuple({type(x) for x in example})
        bad = [x for x in value if not fits(x, item_types)]
        if bad:
            fail(f"list items must be {' or '.join(_TYPE_WORDS.get(t, t.__name__) for t in item_types)}, got {bad[0]!r}")
    if key in POSITIVE and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        fail(f"{key} must be positive")
    if key in CHOICES and value not in CHOICES[key]:
        fail(f"expected one of {', '.join(CHOICES[key])}")
    if key == "tvg_phis" and not set(value) <= set(GIANT_PAIRS):
        fail(f"levels are phi = {', '.join(map(str, GIANT_PAIRS))} (TinyNet-B..E)")


def load_preset(name: str, overrides: Iterable[str] | dict | None = None, *, strict: bool = True) -> dict:
    """The resolved parameters of preset ``name`` (``_base.yaml`` <- ``extends`` chain
    <- the preset <- ``overrides``). With ``strict``, unknown override keys are an error."""
    base = _read_yaml(PRESET_DIR / "_base.yaml")
    chain, seen = [], set()
    path = _preset_path(name)
    while True:
        data = _read_yaml(path)
        if strict and path.parent.resolve() != PRESET_DIR.resolve():   # a user's preset file: a typo is an error
            known = set(parameter_types()) | set(RUN_KEYS) | {"extends", "description"}
            typos = sorted(set(data) - known)
            if typos:
                import difflib

                hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, known, 1)) else k
                         for k in typos]
                raise ReproduceError(f"preset file {path}: unknown parameter(s) {', '.join(hints)}; "
                                     f"known: {', '.join(sorted(known - {'extends', 'description'}))}")
            for key, value in data.items():
                if key not in ("extends", "description"):
                    try:
                        check_parameter(key, value)
                    except ReproduceError as e:
                        raise ReproduceError(f"preset file {path}: {e}") from None
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
    if strict:
        for key, value in ov.items():
            check_parameter(key, value)
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
                f"preset {cfg.get('preset')!r} needs a data set ({cfg.get('dataset')}): pass --data PATH "
                f"(an ImageFolder root with train/ and val/), set {DATA_ENV}, or use --preset smoke")
        cfg["data_dir"], source = env, f"${DATA_ENV}"
    root = Path(cfg["data_dir"]).expanduser()
    fix = "pass --data PATH" + (f" or change ${DATA_ENV}" if source == f"${DATA_ENV}" else "")
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
        from rubik.data import build_imagenet100_manifest

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
    from rubik.data import DataConfig, DataError, resolve_root

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
    import numpy as np
    from PIL import Image

    root = Path(root)
    stamp = root / "SYNTHETIC.json"
    spec = dict(classes=classes, train_per_class=train_per_class, val_per_class=val_per_class,
                size=size, seed=seed)
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return root
    import shutil

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


# =========================================================================== runner

def ensure_kernel(name: str = KERNEL_NAME, echo: Callable[[str], Any] = print) -> str:
    """The name of the Jupyter kernel to run the notebooks in. ``name`` when it is registered;
    otherwise this Python is registered under that name inside its own environment (what ``make
    venv`` does: ``ipykernel install --sys-prefix``), never in the user-wide Jupyter folders."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
        return name
    except NoSuchKernel:
        pass
    if name != KERNEL_NAME or sys.prefix == sys.base_prefix:  # not ours to register, or no venv to put it in
        raise ReproduceError(f"no Jupyter kernel {name!r}: register this Python with `{sys.executable} -m "
                             f"ipykernel install --sys-prefix --name {name}` (inside a virtual environment), "
                             f"or pass --kernel NAME")
    from ipykernel.kernelspec import install

    path = install(kernel_name=name, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)
    echo(f"registered the Jupyter kernel {name!r} (this Python) in {path}")
    return name


def evaluates_released_weights(cfg: dict, notebooks: Sequence[Path]) -> bool:
    """Whether notebook 06 (among ``notebooks``) will evaluate the authors' released weights: it does
    when ``released_weights`` is true and there is an ImageNet root (``imagenet_dir``, which the
    ImageNet presets default to ``--data``)."""
    if not cfg.get("released_weights", True) or not any(_matches(nb, "06") for nb in notebooks):
        return False
    return bool(cfg.get("imagenet_dir")) or cfg.get("dataset") in ("imagenet", "imagenet100")


def check_run_device(cfg: dict) -> None:
    """ReproduceError, before any data is read or any notebook runs, when the run's device does not
    exist here (a CUDA preset or ``-p device=cuda`` on a machine without CUDA)."""
    device = str(cfg.get("device") or "auto")
    if device not in ("auto", "cpu"):
        from rubik.train import check_device

        try:
            check_device(device, fix="-p device=cpu")
        except UserError as e:
            raise ReproduceError(f"preset {cfg.get('preset')!r} trains on {e}") from None


def fetch_released_weights(cfg: dict, notebooks: Sequence[Path], *, echo: Callable[[str], Any] = print) -> None:
    """When notebook 06 will evaluate the authors' released weights (``evaluates_released_weights``),
    make sure they are on this machine (``weights_dir``, ``$RUBIK_WEIGHTS_DIR``, torch.hub's cache)
    or download them now, before any notebook runs; offline, a ReproduceError says how to give them
    (``-p weights_dir=DIR``, ``$RUBIK_WEIGHTS_DIR``) or skip them (``-p released_weights=false``)."""
    if evaluates_released_weights(cfg, notebooks):
        from rubik.models.pretrained import RELEASES, WEIGHTS_DIR_ENV, WeightsError, load_state_dict, local_weights

        weights_dir = cfg.get("weights_dir")
        missing = [n for n, r in RELEASES.items() if local_weights(r.url, weights_dir) is None]
        if missing:
            echo(f"notebook 06 evaluates the released weights: downloading {', '.join(missing)} now")
        for name in missing:
            try:
                load_state_dict(True, name, weights_dir=weights_dir)
            except WeightsError as e:
                if not e.url:
                    raise ReproduceError(str(e)) from None
                files = ", ".join(os.path.basename(r.url) for r in RELEASES.values())
                where = f" (weights_dir {weights_dir!r} has no {os.path.basename(e.url)})" if weights_dir else ""
                raise ReproduceError(
                    f"notebook 06 evaluates the authors' released weights on the ImageNet val set and cannot get "
                    f"{name}'s: downloading {e.url} failed ({e.reason}){where}. Offline, download the release "
                    f"files ({files}; URLs in rubik.models.pretrained.RELEASES) on a machine with internet into "
                    f"one folder and pass -p weights_dir=DIR (or set ${WEIGHTS_DIR_ENV}=DIR), or skip that "
                    f"check with -p released_weights=false") from None


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


def squash_carriage_returns(text: str) -> str:
    """What a terminal shows of ``text``: of every ``\r``-redrawn line (progress bars), the last state."""
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def squash_progress(path) -> None:
    """Keep only the last state of each progress bar in an executed notebook's stream outputs or in
    a log file (a six-hour sweep redraws its bar thousands of times). Missing files are skipped."""
    path = Path(path)
    if not path.is_file():
        return
    if path.suffix == ".ipynb":
        import nbformat

        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and "\r" in out.get("text", ""):
                    out["text"] = squash_carriage_returns(out["text"])
                    changed = True
        if changed:
            tmp = path.with_suffix(".ipynb.tmp")
            nbformat.write(nb, tmp)
            os.replace(tmp, path)
    else:
        text = path.read_bytes().decode("utf-8", errors="replace")   # keep the \r (no newline translation)
        if "\r" in text:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(squash_carriage_returns(text).encode("utf-8"))
            os.replace(tmp, path)


def run(preset: str, *, data: str | None = None, start: str | None = None, only: Sequence[str] | None = None,
        overrides: Iterable[str] | dict | None = None, out_dir: str | os.PathLike | None = None,
        notebooks_dir: str | os.PathLike | None = None, kernel: str | None = None,
        timeout: int | None = None, echo: Callable[[str], Any] = print) -> list[NotebookResult]:
    """Execute the notebooks of ``preset`` in order into ``out_dir`` (default
    ``runs/<preset>``). Raises :class:`ReproduceError` at the first failing
    notebook (naming it, its executed copy and its log)."""
    import papermill as pm

    cfg = load_preset(preset, overrides)
    notebooks = select_notebooks(list_notebooks(notebooks_dir), start=start, only=only)
    check_run_device(cfg)   # a missing GPU: before any data is read or any notebook runs
    kernel = ensure_kernel(kernel or KERNEL_NAME, echo=echo)
    run_dir = Path(out_dir or Path("runs") / cfg["preset"]).resolve()
    synthetic = not data and not needs_data(cfg)
    # a missing data path, then missing released weights: one line each, and no run folder made
    cfg = resolve_data(cfg, data, run_dir, before_reading=lambda c: fetch_released_weights(c, notebooks, echo=echo))
    run_dir.mkdir(parents=True, exist_ok=True)
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
                                    request_save_on_cell_execute=True, extra_arguments=KERNEL_ARGS)
            except pm.PapermillExecutionError as e:
                err = f"cell {e.cell_index + 1 if isinstance(e.cell_index, int) else '?'}: {e.ename}: {e.evalue}"
                if e.ename == "ModuleNotFoundError" and "rubik" in str(e.evalue):
                    err += (f" (the kernel {kernel!r} runs another Python than {sys.executable}: register this "
                            f"one with `{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME}`, "
                            f"or pass --kernel NAME)")
            except Exception as e:  # kernel missing, timeout, bad notebook...
                hint = ""
                if type(e).__name__ == "NoSuchKernel":
                    hint = f" (install one: {sys.executable} -m ipykernel install --sys-prefix --name {kernel})"
                err = f"{type(e).__name__}: {e}{hint}"
            if err:
                lf.write(f"\n# FAILED: {err}\n")
        squash_progress(out_nb)
        squash_progress(log)
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
                + ("" if synthetic else f" --data {shlex.quote(cfg['data_dir'])}")
                + "".join(f" -p {shlex.quote(p)}" for p in (overrides or []) if isinstance(overrides, (list, tuple)))
                + (f" --out {shlex.quote(str(out_dir))}" if out_dir else ""))
        echo(f"[{i}/{len(notebooks)}] {nb.stem} done in {_fmt_s(dt)}")
        _record_timing(run_dir / "timings.json", nb.stem, dt)  # now, so a later failure keeps it
    total = time.perf_counter() - t_all
    n_fig = len(list((run_dir / "figures").glob("*.png")))
    n_tab = len(list((run_dir / "tables").glob("*.csv")))
    echo(f"all {len(results)} notebooks done in {_fmt_s(total)}: {n_fig} figures in {run_dir / 'figures'}, "
         f"{n_tab} tables in {run_dir / 'tables'}")
    return results


def _record_timing(tfile: Path, name: str, seconds: float) -> None:
    """Merge one notebook's time into ``timings.json`` (over resumed runs: the latest finished
    run of each notebook, plus their total), written atomically."""
    timings = json.loads(tfile.read_text()) if tfile.exists() else {}
    timings.pop("total", None)
    timings[name] = round(seconds, 2)
    timings["total"] = round(sum(timings.values()), 2)
    tmp = tfile.with_name(tfile.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(timings.items())), indent=1))
    os.replace(tmp, tfile)


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
    parser.add_argument("--kernel", default=None, help=f"Jupyter kernel (default: {KERNEL_NAME!r}, this Python, registered in its "
                        f"environment on first use)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--list", action="store_true", help="list presets and notebooks, then exit")
    parser.add_argument("--show", action="store_true", help="print the resolved parameters, then exit")


def main(args) -> int:
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
    from rubik.sweep import init_sweep

    try:
        return init_sweep(sweep_dir, samples, template, **kw)
    except ValueError as e:
        raise ValueError(f"{e}\nThe run directory holds a sweep made with other parameters: run with another "
                         f"--out DIR, or delete {sweep_dir} to start over.") from None


