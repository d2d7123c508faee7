"""The DRNet experiment: plan, run (resumable, several processes may share it), evaluate, report.

A preset (``rubik/presets/drnet/<name>.yaml``) names the backbone (an ``Arch`` dict), the candidates,
predictor, FLOPs targets, eta, temperature, recipe, epochs per stage and seeds. For every seed the plan
is: ``multires`` (DRNet's stage 1: the classifier at every candidate, one BatchNorm set each), ``fixed_<px>``
(the backbone trained alone at one candidate, fed the same pixels), then ``joint_<target>`` (stage 2
from ``multires``' checkpoint). Each run is an ordinary ``rubik.train`` run directory
``DIR/seed<s>/<name>/`` (checkpoint every epoch, ``resume="auto"``), followed by ``eval.json``
(``rubik.drnet.evaluate``). Processes running the same command skip runs another one holds (each run's
``drnet.lock``, held from the check that it is not done to its ``eval.json``), and wait for ``multires``
before its joint runs: ``rubik drnet run DIR ...`` twice in parallel uses two cores.

Settings are checked before anything is written (``rubik.drnet.settings``): a bad ``-p`` value is one
line, and a folder holding runs trained with other settings is refused (each run's fingerprint), never
reported under the new ones. ``DIR/preset.json`` holds the settings of every run in the folder (the
seeds and targets of all invocations).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..data import DataConfig, resolve_root
from ..errors import ConfigError, RunDirError
from ..models import Arch
from ..rundir import acquire, atomic_write_json, jsonable, lock_info, read_lock
from ..sweep import code_version
from ..train import Recipe, TrainConfig, train, validate
from .evaluate import evaluate_drnet, load_drnet
from .model import DRNetConfig
# load_evals: re-exported (it lives with the report that reads the evals)
from .report import EVAL_GLOB, eval_table, load_evals, write_report
# the presets and their checks (load_preset, list_presets: re-exported)
from .settings import (apply_params, check_preset, check_run_dir, eval_problem, list_presets, load_preset,
                       run_fingerprint, target_name)


def plan(preset: dict, data_root: str | None, out_dir, *, progress: bool = False) -> list[dict]:
    """``[{"name", "seed", "config": TrainConfig, "after": name or None}]`` in run order, every config
    checked (``settings.check_preset``, then ``rubik.train.validate``: a bad candidate list, target or temperature
    fails here, before data)."""
    check_preset(preset)
    out_dir = Path(out_dir)
    arch = Arch.from_dict(preset["backbone"])
    common = dict(predictor_channels=tuple(preset["predictor_channels"]), predictor_view=preset["predictor_view"])
    recipe_d = dict(preset["recipe"])
    recipe = Recipe.named(recipe_d.pop("name"), **{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in recipe_d.items()})
    base = DRNetConfig(candidates=tuple(float(s) for s in preset["candidates"]), **common)
    runs = []
    for seed in preset["seeds"]:
        folder = out_dir / f"seed{seed}"

        def cfg(task: DRNetConfig, epochs: int, name: str) -> TrainConfig:
            data = DataConfig(root=data_root, seed=seed, **preset.get("data", {}))
            return TrainConfig(arch=arch, data=data, recipe=dataclasses.replace(recipe, epochs=epochs), seed=seed,
                               device=preset.get("device", "auto"), threads=preset.get("threads"),
                               out_dir=str(folder / name), resume="auto", progress=progress,
                               task={"kind": "drnet", **task.to_dict()})

        runs.append({"name": "multires", "seed": seed, "after": None,
                     "config": cfg(DRNetConfig(**{**asdict(base), "stage": "multires"}), preset["epochs"]["multires"],
                                   "multires")})
        for s, px in zip(base.candidates, base.resolutions(arch.input_size)):
            runs.append({"name": f"fixed_{px}", "seed": seed, "after": None,
                         "config": cfg(DRNetConfig(**{**asdict(base), "candidates": (s,), "stage": "multires"}),
                                       preset["epochs"]["fixed"], f"fixed_{px}")})
        for t in preset["targets"]:
            task = DRNetConfig(**{**asdict(base), "stage": "joint", "flops_target": float(t),
                                  "eta": float(preset["eta"]), "temperature": tuple(map(float, preset["temperature"])),
                                  "init": str(folder / "multires" / "checkpoint.pt")})
            name = f"joint_{target_name(t)}"
            runs.append({"name": name, "seed": seed, "after": "multires", "config": cfg(task, preset["epochs"]["joint"],
                                                                                       name)})
    for r in runs:
        task = r["config"].task
        if r["after"]:   # its init does not exist yet: check everything else
            task = {**task, "init": None}
        validate(dataclasses.replace(r["config"], task=task))
    return runs


def _done(run: dict) -> bool:
    """Evaluated: a complete ``eval.json`` (a damaged one is written again)."""
    try:
        return eval_problem(json.loads((Path(run["config"].out_dir) / "eval.json").read_text())) is None
    except (OSError, ValueError):
        return False


def _merged_settings(preset: dict, out_dir: Path) -> dict:
    """The settings of every run in ``out_dir``: ``preset`` with the seeds and targets of the folder's
    ``preset.json`` (earlier invocations) added; ConfigError for a ``preset.json`` that cannot be read."""
    path = out_dir / "preset.json"
    if not path.exists():
        return preset
    try:
        old = json.loads(path.read_text())
        seeds, targets = list(old["seeds"]), list(old["targets"])
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{path}: cannot be read ({type(e).__name__}: {e}); it lists the settings of the runs in "
                          f"that folder: restore it, or use a new folder") from None
    seeds += [s for s in preset["seeds"] if s not in seeds]
    targets += [t for t in preset["targets"] if t not in targets]
    return {**preset, "seeds": seeds, "targets": targets}


def check_folder(preset: dict, data_root: str | None, out_dir) -> dict:
    """The settings ``out_dir/preset.json`` should hold after running ``preset`` there (``_merged_settings``);
    ConfigError (one line) if a run already in the folder was trained or evaluated with other settings."""
    out_dir = Path(out_dir)
    merged = _merged_settings(preset, out_dir)
    n_random = merged.get("n_random", 1000)
    for r in plan(merged, data_root, out_dir):
        if Path(r["config"].out_dir).is_dir():
            check_run_dir(r["config"].out_dir, r["config"], n_random)
    return merged


def run_experiment(preset: dict, data_root: str | None, out_dir, *, only=None, poll_s: float = 30.0,
                   log=print, progress: bool | None = None) -> dict:
    """Train and evaluate every run of ``plan`` not done yet (``only``: names to restrict to); returns
    ``{"done": [...], "skipped": [...]}``. Runs held by another process are left to it. ``progress``: the
    training loop's progress bars (default: when standard error is a terminal, i.e. not in a batch job)."""
    if progress is None:
        progress = sys.stderr.isatty()
    out_dir = Path(out_dir)
    runs = planned = plan(preset, data_root, out_dir, progress=progress)
    if only is not None:   # a name that matches no run is a typo, not an empty experiment: said before writing
        names = {r["name"] for r in runs}
        unknown = set(only) - names - {n.split("_")[0] for n in names}
        if unknown:
            raise ConfigError(f"--only {sorted(unknown)}: not a run of this preset; its runs: "
                              f"multires, fixed, joint or one of {sorted(names)}")
        runs = [r for r in runs if r["name"].split("_")[0] in only or r["name"] in only]
    resolve_root(planned[0]["config"].data)                  # the data is there: before anything is written
    merged = check_folder(preset, data_root, out_dir)
    n_random = preset.get("n_random", 1000)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "preset.json", jsonable(merged))
    done, told = [], set()
    while True:
        started, waiting = False, False
        for r in runs:
            if _done(r):
                continue
            if r["after"] and not (Path(r["config"].out_dir).parent / r["after"] / "result.json").is_file():
                waiting = True
                continue
            cfg = r["config"]
            key = f"seed{r['seed']}/{r['name']}"
            # the run is this process's from here to its eval.json: another `drnet run` leaves it alone
            Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
            lock = acquire(Path(cfg.out_dir) / "drnet.lock", lock_info(out_dir=cfg.out_dir, action="drnet run"))
            if lock is None:
                if key not in told:
                    who = read_lock(Path(cfg.out_dir) / "drnet.lock") or {}
                    log(f"[drnet] {key}: in use by another `rubik drnet run` (pid {who.get('pid')} on "
                        f"{who.get('host')}); left to it")
                    told.add(key)
                waiting = True
                continue
            try:
                if _done(r):
                    continue
                check_run_dir(cfg.out_dir, cfg, n_random)     # as it is now, under the lock
                try:
                    if not (Path(cfg.out_dir) / "result.json").is_file():
                        log(f"[drnet] train {key}")
                        res = train(cfg)
                        log(f"[drnet] {key}: top1 {res['top1']} in {res['train_time_s']:.0f} s")
                except RunDirError as e:
                    if "in use" not in str(e):    # a plain `rubik train` into the folder: wait for it
                        raise
                    waiting = True
                    continue
                model, _ = load_drnet(Path(cfg.out_dir) / "checkpoint.pt")
                report = evaluate_drnet(model, DataConfig(**asdict(cfg.data)), n_random=n_random,
                                        seed=r["seed"], device=cfg.device if cfg.device != "auto" else "cpu")
                # the code that trained and evaluated it, as every sweep record carries, and its settings' fingerprint
                report.update(name=r["name"], seed=r["seed"], task=cfg.task, code_version=code_version(),
                              fingerprint=run_fingerprint(cfg, n_random))
                atomic_write_json(Path(cfg.out_dir) / "eval.json", jsonable(report))
            finally:
                lock.release()
            log(f"[drnet] evaluated {key}")
            done.append(key)
            started = True
        if started:
            continue
        if not waiting:
            return {"done": done, "skipped": []}
        time.sleep(poll_s)


# ----------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="drnet_command", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("run", help="train and evaluate the experiment's runs (resumable; run it in N processes "
                       "for N cores)")
    r.add_argument("dir")
    r.add_argument("--preset", default="imagenette", help=f"one of {list_presets()} or a .yaml path")
    r.add_argument("--data", help="dataset root (default $RUBIK_DATA_DIR)")
    r.add_argument("--seeds", help="comma-separated seeds (default the preset's)")
    r.add_argument("--only", help="comma-separated run kinds or names: multires, fixed, joint, fixed_51 ...")
    r.add_argument("-p", "--param", action="append", default=[], metavar="KEY=YAML",
                   help="preset override, e.g. -p 'epochs={fixed: 3, multires: 3, joint: 1}'")
    e = sub.add_parser("eval", help="routed evaluation of one DRNet checkpoint (a table; --json for the report)")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True)
    e.add_argument("--n-random", type=int, default=1000)
    e.add_argument("--device", default="cpu")
    e.add_argument("--out", help="also write the full report (JSON, with per-image outcomes) to this file")
    e.add_argument("--json", action="store_true", help="print the report as JSON (without per-image outcomes) "
                   "instead of the table")
    rep_ = sub.add_parser("report", help="tables and figures of a finished (or partial) experiment")
    rep_.add_argument("dir")
    rep_.add_argument("--out", help="folder for the figures and summary (default DIR/report)")
    rep_.add_argument("--data", help="dataset root, for the example-image grid")
    rep_.add_argument("--json", action="store_true", help="print the rows, the seed analysis and the files as JSON "
                      "(default: the two tables as text)")


def main(args) -> int:
    if args.drnet_command == "run":
        preset = apply_params(load_preset(args.preset), args.param)
        if args.seeds is not None:   # `--seeds ''` is a mistake, not "the preset's seeds"
            try:
                preset["seeds"] = [int(s) for s in args.seeds.split(",")]
            except ValueError:
                raise ConfigError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
        only = set(args.only.split(",")) if args.only is not None else None
        print(json.dumps(run_experiment(preset, args.data, args.dir, only=only)))
    elif args.drnet_command == "eval":
        model, config = load_drnet(args.checkpoint)
        data = DataConfig(**{**(config.get("data") or {}), "root": args.data})
        report = jsonable(evaluate_drnet(model, data, device=args.device, n_random=args.n_random))
        if args.json:
            print(json.dumps({k: v for k, v in report.items() if k not in ("fixed", "routed")} | {
                "fixed": [{k: v for k, v in f.items() if k != "correct"} for f in report["fixed"]],
                **({"routed": {k: v for k, v in report["routed"].items() if k not in ("correct", "choice")}}
                   if "routed" in report else {})}, indent=1))
        else:   # the headline first, then a row per routing
            print(eval_table(report, args.checkpoint))
        if args.out:
            atomic_write_json(args.out, report)
    else:
        if not any(Path(args.dir).glob(EVAL_GLOB)):
            raise ConfigError(f"{args.dir}: no evaluated runs (seed*/<run>/eval.json) in this folder; point it at "
                              "the folder `rubik drnet run` wrote, or at data/results/imagenette/drnet")
        out = Path(args.out or Path(args.dir) / "report")
        result = write_report(args.dir, out, data_root=args.data)
        if args.json:
            print(json.dumps(jsonable(result), indent=1, allow_nan=False))
        else:   # what a reader wants first: the per-run table, then the registered analysis
            print((out / "summary.md").read_text())
            print((out / "seeds.md").read_text())
            print(f"wrote {', '.join(result['files'])} to {out}")
    return 0


__all__ = ["list_presets", "load_preset", "plan", "check_folder", "run_experiment", "load_evals"]
