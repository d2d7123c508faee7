"""``rubik reproduce``: run the notebooks in order with papermill for a preset.

    rubik reproduce --preset smoke                       # seconds, synthetic data
    rubik reproduce --preset cpu --data ../shared/datasets/imagenette
    rubik reproduce --preset cpu --data ... --from 03    # resume at 03_frontier
    rubik reproduce --preset cpu --data ... -p n_models=4 -p epochs=1

Each run writes ``runs/<preset>/``: the executed notebooks, ``figures/`` (PNG +
PDF), ``tables/`` (CSV + Markdown), ``logs/`` (one log per notebook), the
resolved ``config.yaml`` and whatever the notebooks train (``sweep/``...).

The preset (``rubik.preset``) is resolved and checked first; the runner then passes every
notebook the parameters its ``parameters`` cell declares, in the project's own Jupyter kernel,
and keeps each notebook's time (``timings.json``) and a log with its progress bars squashed.
The helpers the notebooks call are ``rubik.reproduce``'s.

papermill, nbformat and the Jupyter client are imported where they are used (~3 s, jsonschema's
mostly): ``rubik reproduce`` says a bad preset, ``-p``, device or data path in one line at once,
before loading them, and ``--list``/``--show`` never do.
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

from rubik.errors import ReproduceError, UserError
from rubik.models.pretrained import RELEASES, WEIGHTS_DIR_ENV, WeightsError, load_state_dict, local_weights
from rubik.preset import list_presets, load_preset
from rubik.reproduce import DATA_ENV, REPO_ROOT, resolve_data
from rubik.train import check_device

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# the Jupyter kernel the notebooks run in: this project's Python, registered inside its own
# environment (`ipykernel install --sys-prefix`), so the user's own kernels stay untouched
KERNEL_NAME = "rubik"
KERNEL_DISPLAY_NAME = "Python (rubik)"
# the kernel's own log at ERROR: it warns on every start that its local TCP sockets are not encrypted
# (ipykernel >= 7), which says nothing about the notebook; the notebooks' outputs and warnings are unaffected
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


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
    import nbformat   # lazy: see the module docstring

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


# =========================================================================== runner

def needs_data(cfg: dict) -> bool:
    return str(cfg.get("data_dir")) != "synthetic"


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
    import papermill as pm   # lazy: once the preset, device and data are known to be fine

    results, t_all = [], time.perf_counter()
    shown = _echo_sweep_budget(run_dir, cfg, echo, None)
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
        shown = _echo_sweep_budget(run_dir, cfg, echo, shown)   # once notebook 01 has made the sweep
        _record_timing(run_dir / "timings.json", nb.stem, dt)  # now, so a later failure keeps it
    total = time.perf_counter() - t_all
    n_fig = len(list((run_dir / "figures").glob("*.png")))
    n_tab = len(list((run_dir / "tables").glob("*.csv")))
    echo(f"all {len(results)} notebooks done in {_fmt_s(total)}: {n_fig} figures in {run_dir / 'figures'}, "
         f"{n_tab} tables in {run_dir / 'tables'}")
    return results


def _echo_sweep_budget(run_dir: Path, cfg: dict, echo, shown):
    """Say what the run's sweep costs (``rubik.sweep_cli.sweep_budget``, as ``rubik sweep init`` does) and
    how many trials train at once, when ``sweep/sweep.json`` is new or changed since ``shown``; returns
    what was shown."""
    spec = run_dir / "sweep" / "sweep.json"
    try:
        stamp = (spec.stat().st_mtime_ns, spec.stat().st_size)
    except OSError:
        return shown
    if stamp == shown:
        return shown
    from rubik.launcher import default_processes
    from rubik.sweep_cli import sweep_budget

    try:
        echo(f"  sweep   : {sweep_budget(spec.parent)}")
    except Exception as e:   # a budget that cannot be worked out is no reason to stop the run
        echo(f"  sweep   : (no budget: {type(e).__name__}: {e})")
    n = cfg.get("processes")
    workers = f"{n} worker process(es)" if n else \
        f"{default_processes(cfg.get('device'))} worker process(es), one per GPU present (-p processes=N to choose)"
    echo(f"  workers : {workers}; per-epoch trial checkpoints {'on' if cfg.get('trial_checkpoints') else 'off'}")
    return stamp


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
                        help="override a preset parameter, KEY or SECTION.KEY (value parsed as YAML); repeatable")
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
