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
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from rubik.errors import UserError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PAPER_DIR = REPO_ROOT / "data" / "paper"
RESULTS_DIR = REPO_ROOT / "data" / "results"
DATA_ENV = "RUBIK_DATA_DIR"
# the Jupyter kernel the notebooks run in: this project's Python, registered inside its own
# environment (`ipykernel install --sys-prefix`), so the user's own kernels stay untouched
KERNEL_NAME = "rubik"
KERNEL_DISPLAY_NAME = "Python (rubik)"
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
                      "formula_levels": (dict,), "tvg_epochs": (int,), "imagenet_dir": (str,),
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
        cfg["cache_dir"] = cfg.get("cache_dir") or str((run_dir / "cache").resolve())
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
    if cfg.get("dataset") == "imagenet100" and not cfg.get("manifest"):
        # the paper's ImageNet-100: 100 random classes x 500 random train images, drawn from the
        # seed once and recorded in the run directory (pass -p manifest=PATH to reuse a subset)
        from rubik.data import build_imagenet100_manifest

        path = run_dir / "imagenet100_manifest.json"
        if not path.exists():
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
        raise ReproduceError(f"{e} (set data_dir in the parameters cell, or {DATA_ENV})") from None


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
    kernel = ensure_kernel(kernel or KERNEL_NAME, echo=echo)
    run_dir = Path(out_dir or Path("runs") / cfg["preset"]).resolve()
    notebooks = select_notebooks(list_notebooks(notebooks_dir), start=start, only=only)
    run_dir.mkdir(parents=True, exist_ok=True)
    synthetic = not data and not needs_data(cfg)
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


def paper_table(name: str) -> "pandas.DataFrame":  # noqa: F821
    """``data/paper/<name>.csv`` as a DataFrame."""
    import pandas as pd

    p = PAPER_DIR / (name if name.endswith(".csv") else f"{name}.csv")
    if not p.exists():
        raise FileNotFoundError(f"{p} not found (have: {', '.join(x.name for x in PAPER_DIR.glob('*.csv'))})")
    return pd.read_csv(p)


def measured_results(results_dir: str | os.PathLike | None = None,
                     dataset: str | None = None) -> "pandas.DataFrame":  # noqa: F821
    """Every CSV under ``results_dir`` (default ``data/results/``) concatenated, with a
    ``file`` column; an empty frame if there are none. With ``dataset``, only the rows whose
    ``dataset`` column equals it (tables without that column, such as a study's sweep tables,
    say nothing about the dataset and are left out)."""
    import pandas as pd

    d = Path(results_dir) if results_dir else RESULTS_DIR
    frames = []
    for p in sorted(d.glob("**/*.csv")) if d.is_dir() else []:
        try:
            frame = pd.read_csv(p)
        except Exception:  # a malformed file is skipped, not fatal
            continue
        if dataset is not None:
            if "dataset" not in frame:
                continue
            frame = frame[frame["dataset"].astype(str) == dataset]
        if len(frame):
            frames.append(frame.assign(file=str(p.relative_to(d))))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --------------------------------------------------------------------------- study helpers
# Small glue used by the notebooks; the science lives in rubik.sweep / frontier / formula.

PRETTY = {"efficientnet_b0": "EfficientNet-B0", "base": "EfficientNet-B0 (base)",
          **{f"tinynet_{k}": f"TinyNet-{k.upper()}" for k in "abcde"},
          **{f"giant_m{k}": f"B^-{k}" for k in range(1, 5)},
          **{f"efficientnet_b0_giant_m{k}": f"EfficientNet-B^-{k}" for k in range(1, 5)},
          "ghostnet_a": "GhostNet-A", "ghostnet_a_hswish": "GhostNet-A + HSwish", "ghostnet_050": "GhostNet-0.5x",
          "ghostnet_100": "GhostNet-1.0x", "ghostnet_130": "GhostNet-1.3x", "ghostnet_150": "GhostNet-1.5x",
          "resnet50": "ResNet-50"}
TINYNETS = tuple(f"tinynet_{k}" for k in "abcde")
# the paper pairs the inversed giant formula B^-phi with the TinyNet of the same FLOPs level
GIANT_PAIRS = {1: "tinynet_b", 2: "tinynet_c", 3: "tinynet_d", 4: "tinynet_e"}


def pretty(name) -> str:
    return PRETTY.get(str(name), str(name))


def count_classes(data_dir, manifest=None) -> int:
    """Number of classes: the ImageNet-100 ``manifest``'s, else the class folders under
    ``data_dir/train`` (1000, said in a printed note, if there are none)."""
    if manifest:
        return len(json.loads(Path(manifest).read_text())["classes"])
    train = Path(data_dir or "") / "train"
    if data_dir and train.is_dir():
        n = sum(1 for p in train.iterdir() if p.is_dir())
        if n:
            return n
    print(f"note: no class folders under {str(train) if data_dir else 'data_dir (None)'}: FLOPs and params "
          f"are counted for a 1000-class head")
    return 1000


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
    return TrainConfig(data=data, recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed,
                       device=device, threads=threads, progress=False)


def init_sweep_dir(sweep_dir, samples, template, **kw):
    """``rubik.sweep.init_sweep`` with a hint when the directory holds a different sweep."""
    from rubik.sweep import init_sweep

    try:
        return init_sweep(sweep_dir, samples, template, **kw)
    except ValueError as e:
        raise ValueError(f"{e}\nThe run directory holds a sweep made with other parameters: run with another "
                         f"--out DIR, or delete {sweep_dir} to start over.") from None


def finished(results):
    """The trials of ``load_results`` that finished; RuntimeError (with the first error) if none did."""
    done = results[results["status"] == "done"]
    if not len(done):
        failed = results[results["status"] == "failed"]
        err = failed["error"].iloc[0] if len(failed) and "error" in failed else "no trial has run yet"
        raise RuntimeError(f"no finished trial among {len(results)} ({err}); see the sweep's trials/*.json")
    return done.copy()


def label_trials(df):
    """Adds a display ``name`` (``B^-2``, ``EfficientNet-B0 (base)``, ``r007``)."""
    df = df.copy()
    df["name"] = [pretty(i) for i in df["id"]]
    return df


def sweep_histories(sweep_dir):
    """Per-epoch metrics of every finished trial: ``id, epoch, top1, ...`` (long format)."""
    import pandas as pd

    rows = []
    for p in sorted((Path(sweep_dir) / "trials").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for i, h in enumerate((rec.get("metrics") or {}).get("history") or []):
            rows.append({"run": rec.get("id", p.stem), "epoch": h.get("epoch", i + 1),
                         **{k: v for k, v in h.items() if k != "epoch" and isinstance(v, (int, float))}})
    return pd.DataFrame(rows)


def pareto_layers(df, x="flops", y="top1", min_points: int = 3):
    """The Pareto frontier, plus the next frontier layers while it has fewer than
    ``min_points`` models (a GP fit needs a few points; tiny sweeps have short fronts).
    Adds a ``layer`` column (0 = the frontier itself)."""
    import pandas as pd

    from rubik.frontier import pareto_frontier

    rest, parts, layer = df, [], 0
    while len(rest) and sum(len(p) for p in parts) < min_points:
        front = pareto_frontier(rest, x=x, y=y, dropna=True)
        parts.append(front.assign(layer=layer))
        rest = rest.drop(front.index)
        layer += 1
    return pd.concat(parts).sort_values(x) if parts else df.iloc[:0].assign(layer=[])


def frontier_gap(frontier, others, x="flops", y="top1"):
    """For each model in ``others`` (e.g. the giant formula): the frontier's accuracy
    interpolated (in log FLOPs) at its FLOPs, and the gap frontier - model; ``note`` says why
    they are blank (the model's FLOPs lie outside the frontier's range: no extrapolation)."""
    import numpy as np

    from rubik.frontier import frontier_at

    out = others[[c for c in ("id", "name", x, y) if c in others]].copy()
    out["frontier_" + y] = frontier_at(frontier, out[x].to_numpy(), x, y)
    out["gap"] = out["frontier_" + y] - out[y]
    lo, hi = float(frontier[x].min()), float(frontier[x].max())
    xs = out[x].astype(float).to_numpy()
    out["note"] = np.where(xs < lo, f"fewer FLOPs than any frontier model ({lo / 1e6:.3g}-{hi / 1e6:.3g}M)",
                           np.where(xs > hi, f"more FLOPs than any frontier model "
                                                   f"({lo / 1e6:.3g}-{hi / 1e6:.3g}M)", ""))
    return out


def registry_table(names=None, *, base_resolution=None, num_classes: int = 1000):
    """Registered models with their dials, our analytic params/FLOPs and the paper's numbers."""
    import pandas as pd

    from rubik.flops import analytic_flops, analytic_params
    from rubik.models import get_model_spec, list_models

    rows = []
    for name in (names or list_models()):
        spec = get_model_spec(name)
        t = spec.twist
        kw = dict(num_classes=num_classes)
        if spec.rules is not None:
            kw["rules"] = spec.rules
        f = analytic_flops(spec.base, t, base_resolution=base_resolution, **kw)
        f0 = analytic_flops(spec.base, (1.0, 1.0, 1.0), base_resolution=base_resolution, **kw)
        paper = spec.paper or {}
        from rubik.models.registry import BASE_RESOLUTION

        rows.append(dict(name=name, model=pretty(name), base=spec.base, r=t.resolution, d=t.depth, w=t.width,
                         resolution=t.image_size(base_resolution or BASE_RESOLUTION[spec.base]),
                         params=analytic_params(spec.base, t, **kw), flops=f, flops_ratio=f / f0,
                         paper_params_m=paper.get("params_m"), paper_flops_m=paper.get("flops_m"),
                         paper_top1=paper.get("top1")))
    df = pd.DataFrame(rows)
    for c in ("paper_params_m", "paper_flops_m", "paper_top1"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def formula_curve(formula, c_min: float, c_max: float = 1.0, n: int = 40, solve_w: bool = True):
    """The GP means/stds of r and d on a log grid of FLOPs ratios, and the solved width."""
    import numpy as np
    import pandas as pd

    cs = np.geomspace(c_min, c_max, n)
    mean, std = formula.predict(cs, return_std=True)
    df = pd.DataFrame({"c": cs, "r": mean[:, 0], "d": mean[:, 1], "r_std": std[:, 0], "d_std": std[:, 1]})
    if solve_w:
        ws = []
        for c, r, d in zip(cs, df.r, df.d):
            try:
                ws.append(formula.solve_width(float(r), float(d), float(c)) if r > 0 and d > 0 else np.nan)
            except (ValueError, ArithmeticError):
                ws.append(np.nan)
        df["w"] = ws
    return df


def reference_dials(base_resolution=None, num_classes: int = 1000, phis=(1, 2, 3, 4)):
    """Released TinyNet-A..E and the inversed giant B^-phi: name, family, r, d, w, c, FLOPs
    (at the family's own resolution, 224 px, by default: small proxy resolutions cannot
    build TinyNet-E, and the FLOPs ratio c hardly depends on the base resolution)."""
    import pandas as pd

    from rubik.cube import giant_twist
    from rubik.flops import analytic_flops

    reg = registry_table(list(TINYNETS), base_resolution=base_resolution, num_classes=num_classes)
    tiny = pd.DataFrame(dict(name=[n[-1].upper() for n in reg.name], family="TinyNet (released)", r=reg.r,
                             d=reg.d, w=reg.w, c=reg.flops_ratio, flops=reg.flops))
    f0 = analytic_flops("efficientnet_b0", (1.0, 1.0, 1.0), base_resolution=base_resolution, num_classes=num_classes)
    g = []
    for p in phis:
        t = giant_twist(-p)
        f = analytic_flops("efficientnet_b0", t, base_resolution=base_resolution, num_classes=num_classes)
        g.append(dict(name=f"B^-{p}", family="inversed giant formula", r=t.resolution, d=t.depth, w=t.width,
                      c=f / f0, flops=f))
    return pd.concat([tiny, pd.DataFrame(g)], ignore_index=True)


def derive_levels(formula, levels, **kw):
    """``rubik.formula.derive_family`` one FLOPs level at a time, skipping (with a printed
    note) levels where the width cannot be solved: a formula fitted on a short, noisy
    frontier can ask for r and d that alone exceed the FLOPs budget. With
    ``base_resolution`` the widths are solved at that resolution too (r(c) and d(c)
    are ratios; the rounding of the real network depends on the px)."""
    import copy

    import pandas as pd

    from rubik.formula import derive_family

    if "base_resolution" in kw:  # solve the widths at the resolution the costs are reported at
        formula = copy.copy(formula).set_params(base_resolution=kw["base_resolution"],
                                                num_classes=kw.get("num_classes", 1000))
    parts = []
    for name, c in dict(levels).items():
        try:
            parts.append(derive_family(formula, {name: c}, **kw))
        except ValueError as e:
            print(f"{name} (c={c:.3g}) skipped: {e}")
    if not parts:
        raise ValueError("the tiny formula gives no model at any of the FLOPs levels (see the notes above)")
    return pd.concat(parts, ignore_index=True)


def compare_families(derived, num_classes: int = 1000):
    """Per FLOPs level: our tiny-formula model, the released TinyNet and the inversed
    giant model at the same FLOPs ratio (dials, px, params, FLOPs).

    ``derived``: ``rubik.formula.derive_family(formula, {"tinynet_a": c_A, ...},
    base_resolution=224)`` (tiny rows named after the TinyNet whose FLOPs level they
    target; its giant rows have phi solved for the real FLOPs, ``matched_giant_phi``)."""
    import numpy as np
    import pandas as pd

    ref = registry_table(list(TINYNETS), num_classes=num_classes).set_index("name")
    tiny, giant = derived[derived["kind"] == "tiny"], derived[derived["kind"] == "giant"]

    def row(level, model, kind, r, d, w, px, params, flops, c, top1=np.nan):
        return dict(level=level, model=model, kind=kind, r=r, d=d, w=w, resolution=px,
                    params_m=params / 1e6, flops_m=flops / 1e6, c=c, paper_top1=top1)

    rows = []
    for _, t in tiny.iterrows():
        level = f"{pretty(t['name'])} level (c={t['target_c']:.3g})"
        rows.append(row(level, f"ours @ {pretty(t['name'])}", "tiny formula (ours)", t.r, t.d, t.w,
                        t.get("resolution"), t.get("params", np.nan), t.get("flops", np.nan), t.get("flops_ratio")))
        if t["name"] in ref.index:
            x = ref.loc[t["name"]]
            rows.append(row(level, pretty(t["name"]), "TinyNet (released)", x.r, x.d, x.w, x.resolution, x.params,
                            x.flops, x.flops_ratio, x.paper_top1))
        for _, g in giant[np.isclose(giant["target_c"], t["target_c"])].iterrows():
            rows.append(row(level, f"B^{g['phi']:.2f}", "inversed giant formula (FLOPs-matched phi)",
                            g.r, g.d, g.w, g.get("resolution"), g.get("params", np.nan), g.get("flops", np.nan),
                            g.get("flops_ratio")))
    return pd.DataFrame(rows)


TVG_LABELS = {"tiny": "TinyNet dials (paper)", "ours": "our fitted formula", "giant": "inversed giant formula"}
"""Legend labels of the tiny-vs-giant families (``tiny_vs_giant_trials``'s ``family`` column)."""


def tiny_vs_giant_trials(phis, *, tiny="released", formula=None, match_flops: bool = True, levels="tinynet",
                         base="efficientnet_b0", base_resolution=None, num_classes: int = 1000):
    """Trials for the tiny-vs-giant comparison, one FLOPs level per ``phi`` in ``phis``.

    Level ``phi`` is the paper's pair B^-phi / TinyNet-{B,C,D,E} (phi = 1..4). Its FLOPs ratio:

    * ``levels="tinynet"``: the released TinyNet's own ratio in this setting (at a proxy's small
      base resolution that is not 2^-phi: TinyNet-B is c = 0.64 at 64 px, 10 classes);
    * ``levels="c"``: ``c = 2^-phi`` (0.5, 0.25, 0.125, 0.0625); the TinyNet contender then keeps
      the released r and d and solves w for c (the paper's own recipe: r, d from the formula, w
      from the budget). With ``match_flops`` the giant model nearest to c comes first and every
      contender is put at *its* FLOPs: the giant family is a coarse staircase at small inputs
      (at 64 px the giant nearest c = 0.125 has c = 0.165), and equal FLOPs is the comparison.

    Contenders (``tiny``): ``"released"`` the TinyNet dials (family ``tiny``), ``"formula"`` our
    fitted formula at the level's c (family ``tiny``; needs ``formula``), ``"both"`` the two
    (families ``tiny`` and ``ours``). The giant model is the inversed giant formula at the phi that
    gives the first contender's FLOPs (``match_flops``, default: the paper compares at equal
    FLOPs) or at the nominal ``-phi``. Rows are ``rubik.sweep.init_sweep`` samples (plus
    ``family``, ``level``, ``name``, ``phi``)."""
    import pandas as pd

    from rubik.cube import MIN_IMAGE_SIZE, Twist, giant_twist
    from rubik.flops import analytic_flops, analytic_params
    from rubik.models import get_model_spec
    from rubik.models.registry import BASE_RESOLUTION

    br = int(base_resolution or BASE_RESOLUTION[base])
    kw = dict(num_classes=num_classes, base_resolution=br)
    f0 = analytic_flops(base, (1.0, 1.0, 1.0), **kw)
    if tiny not in ("released", "formula", "both"):
        raise ValueError(f"tvg_tiny must be 'released', 'formula' or 'both', got {tiny!r}")
    if tiny in ("formula", "both") and formula is None:
        raise ValueError(f"tvg_tiny={tiny!r} needs the fitted tiny formula (run notebook 04 first)")
    from rubik.formula import matched_giant_phi

    def check_px(name, twist, phi):
        px = int(br * twist.resolution)
        if px < MIN_IMAGE_SIZE:
            raise ValueError(f"{name}: {px} px at base_resolution {br} is below {MIN_IMAGE_SIZE} px; raise "
                             f"base_resolution or drop phi={phi} from tvg_phis")
        return px

    def giant_phi_at(c, phi, what):
        try:
            return matched_giant_phi(base, min(1.0, c), **kw)
        except ValueError as e:
            raise ValueError(f"level phi={phi} ({what}): {e}; raise base_resolution or drop it from "
                             "tvg_phis") from None

    rows = []
    for phi in phis:
        phi = int(phi)
        tn = GIANT_PAIRS.get(phi)
        if tn is None:
            raise ValueError(f"tvg_phis: no TinyNet level for phi={phi} (have {sorted(GIANT_PAIRS)})")
        released = Twist.from_any(get_model_spec(tn).twist)
        check_px(pretty(tn), released, phi)
        if levels == "tinynet":
            c, tiny_name = analytic_flops(base, released, **kw) / f0, pretty(tn)
        elif levels == "c":
            from rubik.flops import solve_width

            c = 2.0 ** -phi
            if match_flops:   # the contenders go to the FLOPs of the giant nearest to c
                c = analytic_flops(base, giant_twist(giant_phi_at(c, phi, f"c={c:g}")), **kw) / f0
            released = Twist(released.resolution, released.depth,
                             solve_width(base, released.resolution, released.depth, c * f0, **kw))
            tiny_name = f"{pretty(tn)} r, d (w solved)"
        else:
            raise ValueError(f"tvg levels must be 'tinynet' or 'c', got {levels!r}")
        # contenders at this level: (family, twist, name, id); the giant is matched to the first one
        contenders = []
        if tiny in ("released", "both"):
            contenders.append(("tiny", released, tiny_name, f"tiny_m{phi}"))
        if tiny in ("formula", "both"):
            family, tid = ("ours", f"ours_m{phi}") if tiny == "both" else ("tiny", f"tiny_m{phi}")
            contenders.append((family, Twist.from_any(formula.twist(min(c, 1.0))), f"ours @ c={c:.3g}", tid))
        for _, t, tname, _ in contenders:   # before matching: a clearer error than the FLOPs count's
            check_px(tname, t, phi)
        t, tname = contenders[0][1], contenders[0][2]
        gphi = giant_phi_at(analytic_flops(base, t, **kw) / f0, phi, tname) if match_flops else float(-phi)
        g = giant_twist(gphi)
        for family, twist, name, tid, p in [("giant", g, f"B^{gphi:.2f}", f"giant_m{phi}", gphi)] + \
                [(fam, tw, nm, i, float("nan")) for fam, tw, nm, i in contenders]:
            px = check_px(name, twist, phi)
            f = analytic_flops(base, twist, **kw)
            rows.append(dict(id=tid, kind=family, family=family, level=phi, name=name, phi=p, base=base,
                             base_resolution=br, r=twist.resolution, d=twist.depth, w=twist.width,
                             resolution=px, params=analytic_params(base, twist, num_classes=num_classes),
                             flops=f, flops_ratio=f / f0))
    return pd.DataFrame(rows)


def run_seeded_sweeps(root, trials, template, seeds, *, processes: int = 1, threads=None, progress=True):
    """One sweep per seed under ``root/seed<k>`` (resumable); all results with a ``seed`` column."""
    import dataclasses

    import pandas as pd

    from rubik.sweep import load_results, run_sweep

    frames = []
    for s in seeds:
        tmpl = dataclasses.replace(template, seed=int(s))
        d = Path(root) / f"seed{s}"
        init_sweep_dir(d, trials, tmpl)
        print(f"seed {s}: {d}")
        run_sweep(d, processes=processes, threads=threads, progress=progress)
        frames.append(load_results(d).assign(seed=int(s)))
    return pd.concat(frames, ignore_index=True)


def summarize_tiny_vs_giant(runs, metric="top1"):
    """Mean and std over seeds per FLOPs level: TinyNet-like vs inversed giant, and the gain."""
    import pandas as pd

    d = runs[runs["status"] == "done"]
    rows = []
    for level, sub in d.groupby("level"):
        row = {"level": f"phi=-{level}"}
        for fam in ("tiny", "ours", "giant"):
            f = sub[sub["family"] == fam]
            if not len(f):
                continue
            row[f"{fam}_model"] = f["name"].iloc[0]
            row[f"{fam}_mflops"] = float(f["flops"].iloc[0]) / 1e6
            row[f"{fam}_px"] = int(f["resolution"].iloc[0])
            row[f"{fam}_{metric}"] = float(f[metric].mean())
            row[f"{fam}_std"] = float(f[metric].std()) if len(f) > 1 else float("nan")
            row["seeds"] = int(f["seed"].nunique())
        for fam, gain in (("tiny", "gain"), ("ours", "ours_gain")):   # accuracy points over the giant
            if f"{fam}_{metric}" in row and f"giant_{metric}" in row:
                row[gain] = row[f"{fam}_{metric}"] - row[f"giant_{metric}"]
        rows.append(row)
    return pd.DataFrame(rows)


def launch_commands(models, *, data="/path/to/imagenet", nproc_per_node: int = 8, out_root="runs/imagenet"):
    """``torchrun`` commands that train ``models`` on ImageNet-1k with the paper's recipes."""
    import pandas as pd

    from rubik.models import get_model_spec

    rows = []
    for name in models:
        spec = get_model_spec(name)
        recipe = "resnet" if spec.base == "resnet50" else "efficientnet"
        # the paper: 128 images per GPU x 8 GPUs for EfficientNet-like models; ResNets batch 1024 total
        bs = 128 if recipe == "efficientnet" else max(1, 1024 // nproc_per_node)
        cmd = (f"torchrun --standalone --nproc_per_node={nproc_per_node} -m rubik train --model {name} "
               f"--recipe {recipe} --dataset imagenet --data {data} --batch-size {bs} "
               f"--out {out_root}/{name} --resume")
        rows.append(dict(model=name, name=pretty(name), base=spec.base, recipe=recipe,
                         epochs=450 if recipe == "efficientnet" else 90, batch_per_gpu=bs, command=cmd))
    return pd.DataFrame(rows)


def evaluate_checkpoint(name, checkpoint, *, data_dir, dataset="imagenet", val_per_class=None, batch_size=64,
                        device="auto", workers=4):
    """Top-1/top-5 of a registered model on the validation set of ``data_dir`` (``rubik.validate``).

    ``checkpoint``: a state-dict path or URL (ours or timm/official format), ``"released"`` for the
    authors' released weights, or ``"random"`` for untrained weights (a plumbing check: accuracy at
    chance). ``dataset`` is only recorded: the val split is read as an ImageFolder."""
    from rubik.models import create_model
    from rubik.train import resolve_device
    from rubik.validate import validate

    n_cls = count_classes(data_dir)
    ckpt = None if str(checkpoint).lower() in ("random", "none") else str(checkpoint)
    pretrained = True if ckpt == "released" else (ckpt or False)
    if ckpt not in (None, "released") and "://" not in ckpt and not Path(ckpt).expanduser().is_file():
        raise FileNotFoundError(f"checkpoint for {name}: {ckpt} not found")
    if ckpt and n_cls != 1000:
        raise ValueError(f"{name}: a 1000-class checkpoint needs the full ImageNet val set "
                         f"({data_dir} has {n_cls} classes)")
    model = create_model(name, num_classes=1000 if ckpt else n_cls, pretrained=pretrained)
    m = validate(model, data_dir, per_class=val_per_class, batch_size=batch_size, device=resolve_device(device),
                 workers=workers)
    return {"model": name, "name": pretty(name), "checkpoint": str(checkpoint), "resolution": model.resolution,
            "top1": m["top1"], "top5": m["top5"], "eval_s": m["eval_s"], "images": m["images"]}


def paper_comparison():
    """The main comparison (TinyNet-A..E, EfficientNet-B0, B^-4 and the baselines of
    appendix Table 1) as one table: ``name, family, params_m, flops_m, top1, source``."""
    import pandas as pd

    models = paper_table("models")
    fam = {"efficientnet_b0": "EfficientNet", "efficientnet_b1": "EfficientNet",
           **{t: "TinyNet (tiny formula)" for t in TINYNETS},
           "efficientnet_b0_giant_m4": "EfficientNet, inversed giant formula"}
    m = models[models["name"].isin(fam)].copy()
    m["family"] = m["name"].map(fam)
    m["model"] = m["name"].map(pretty).where(m["name"] != "efficientnet_b1", "EfficientNet-B1")
    extra = paper_table("tinynet_extra")
    t1 = paper_table("ghostnet_table1")
    base = t1[t1["family"].isin(["MobileNetV3", "GhostNet (width)"])]
    cols = ["model", "family", "params_m", "flops_m", "top1", "source"]
    return pd.concat([m[cols], extra[cols], base[cols]], ignore_index=True)
