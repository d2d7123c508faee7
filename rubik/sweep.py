"""The study: train many randomly twisted models with one recipe, resumably and in parallel.

A sweep is a directory::

    DIR/sweep.json           the spec: sampled trials (one row of ``sample_twists`` each) + TrainConfig template
    DIR/trials/<id>.json     one record per finished trial, written atomically (tmp file + os.replace)
    DIR/claims/<id>.claim    "a worker is training this trial" (a ``rubik.rundir`` lock file: written
                             complete, then hard-linked into place)
    DIR/runs/<id>/           per-trial checkpoints, only with ``trial_checkpoints`` (then a killed
                             trial resumes from its last epoch instead of restarting)

A record holds the trial's sample row (r, d, w, px, repeats, channels, params, FLOPs, ratio), the
full TrainConfig it ran with, the metrics ``train()`` returned, start/end time and duration, the
code version (``git describe``), the seed, host, pid and worker, and (unless the spec's ``latency`` is
off) ``latency_ms``: the median CPU forward time of the trial's architecture measured after training
on the machine that trained it (``rubik.latency.TRIAL_LATENCY``: 1 thread, batch 1). Re-running a sweep skips trials
with a record, so a killed sweep loses at most the trials in flight; ``status == "failed"``
records (the trainer raised) are kept with the traceback and are retried only with
``--retry-failed``; ``"diverged"`` records (non-finite loss) are results, listed by ``status``
and left out of frontiers and fits. A setup error (``rubik.errors.UserError``: missing data, bad
settings; or an ``OSError``: a full or read-only disk) is not a trial's result: the worker stops
with one line and the trial runs again once it is fixed. A record that cannot be written is kept
under ``unsaved_dir()`` and moved in by the next run, so no trained result is lost. An unreadable
record is ``corrupt`` for ``sweep_status`` and ``load_results`` alike (``trial_state``) and is
trained again (the damaged file is kept as ``<id>.json.corrupt``).

Claims make parallel workers safe without a scheduler: a worker trains a trial only after creating
its claim file atomically, re-checks that no record appeared meanwhile, and deletes the claim after
the record is written. A claim is *stale* (and gets taken over) when its process is gone: same host
and the pid is dead or was reused (process start time differs), or, for another host, its file has
not been touched for ``stale_after`` seconds (a heartbeat thread touches live claims every 30 s), or
it cannot be read (claims are complete when they exist, so that is a damaged file).
Stale take-overs happen under an ``fcntl`` lock on ``claims/.lock``, so two workers cannot both
take over one stale claim. Local worker processes die with their parent (``PR_SET_PDEATHSIG``
plus a parent-pid watcher); temp files of killed writes are removed when a worker starts.
``run_sweep`` returns when every trial has a record (it waits for trials held elsewhere);
``rubik sweep run --no-wait`` exits with status 2 while any trial is unfinished.

Workers visit their own share first (trials ``i, i+n, i+2n, ...`` for ``--worker i --workers n``)
and then help with the rest (claims keep that safe; ``--no-steal`` turns it off).

Launching (there is no scheduler beyond the claims; use what you have)::

    # describe the sweep once (paper-like: 100 random twists of B0 + base + giant phi=-1..-4)
    rubik sweep init runs/sweep --n 100 --base efficientnet_b0 --base-resolution 64 \\
        --data /data/imagenette --recipe proxy --epochs 30

    # one machine, CPU: 4 worker processes x 4 threads each, with a progress bar
    rubik sweep run runs/sweep --processes 4 --threads 4

    # one GPU, 12 trials at once (small models leave a GPU mostly idle; 1-2 threads per worker)
    rubik sweep run runs/sweep --device cuda --processes 12

    # a time-boxed run (a GPU lent for minutes): the cheapest trials (FLOPs x epochs) first
    rubik sweep run runs/sweep --device cuda --processes 12 --order short-first

    # one machine, 8 GPUs: workers spread over the devices (cuda:0..7; 16 processes = 2 per GPU), either of
    rubik sweep run runs/sweep --processes 8
    torchrun --standalone --nproc-per-node 8 -m rubik sweep run runs/sweep   # RANK/LOCAL_RANK -> worker/device

    # many machines with shared storage: a SLURM array (worker = SLURM_ARRAY_TASK_ID) ...
    sbatch --array=0-15 --gres=gpu:1 --wrap "rubik sweep run runs/sweep"
    # ... or plain shell, one line per machine
    ssh node3 rubik sweep run /shared/runs/sweep --worker 3 --workers 16

    rubik sweep status runs/sweep        # done / running / failed / left, best trials

With ``--processes P``, local process ``k`` of ``--worker i`` is global worker ``i * P + k`` of
``n * P`` (give every machine the same ``P``). Without ``--worker/--workers`` the worker index is read from torchrun (``RANK``/``WORLD_SIZE``)
or SLURM (``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``, else ``SLURM_PROCID``/``SLURM_NTASKS``).
The torchrun variables are removed before training, so each worker trains its models alone
(no DistributedDataParallel inside a sweep).

From Python (what the notebooks do)::

    from rubik.sweep import sample_twists, init_sweep, run_sweep, load_results
    samples = sample_twists(100, "efficientnet_b0", base_resolution=64, num_classes=10, mode="stratified")
    init_sweep("runs/sweep", samples, TrainConfig(data=DataConfig(root=...), recipe="proxy", epochs=30))
    results = run_sweep("runs/sweep", processes=2, threads=1)      # == load_results("runs/sweep")

``load_results(DIR)`` gives one row per trial (sample columns, ``status``, metrics), ready for
``rubik.frontier.pareto_frontier`` and ``rubik.formula.TinyFormula``.

Tested: two concurrent workers and two local processes train every trial exactly once; a worker
killed with SIGKILL mid-trial leaves a stale claim that the next run takes over (only that
trial is trained again); SIGTERM (``scancel``, ``kill``) releases the claims on the way out.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import math
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from importlib import import_module
from pathlib import Path
from typing import Callable

SPEC_FILE = "sweep.json"
SPEC_VERSION = 1
#: scalar metrics copied from a record into ``load_results`` (the rest stays in the JSON)
METRIC_COLUMNS = ("top1", "top5", "ema_top1", "ema_top5", "best_top1", "epochs", "train_time_s", "images_per_s",
                  "latency_ms")
#: TrainConfig fields a trial row may set for itself (integers), over the template's
TRIAL_FIELDS = ("epochs", "seed")
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_WORLD_SIZE")

from rubik.errors import ConfigError, RunDirError, UserError  # noqa: E402
from rubik.rundir import (HEARTBEAT_S, STALE_AFTER_S, Lock, acquire, atomic_write_json,  # noqa: E402
                          clean_stale_tmp, lock_info, lock_state)
from rubik.rundir import jsonable as _jsonable  # noqa: E402
from rubik.sampling import sample_twists  # noqa: E402  (re-exported: rubik.sweep.sample_twists)

__all__ = ["sample_twists", "init_sweep", "run_sweep", "run_worker", "load_results", "load_correct", "load_spec",
           "sweep_status", "trial_config", "add_arguments", "main"]


# ----------------------------------------------------------------------------- small utilities

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path):
    with open(path) as f:
        return json.load(f)


_CODE_VERSION = None


def code_version() -> str:
    """``$RUBIK_CODE_VERSION`` if set (a copy of the code without its git history, e.g. on a rented
    GPU machine: set it to the commit the copy was made from), else ``git describe --always --dirty
    --tags`` of the rubik checkout, else ``rubik-<version>``."""
    global _CODE_VERSION
    if os.environ.get("RUBIK_CODE_VERSION"):
        return os.environ["RUBIK_CODE_VERSION"]
    if _CODE_VERSION is None:
        import rubik

        root = Path(rubik.__file__).resolve().parent.parent
        try:
            out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                                 capture_output=True, text=True, timeout=10)
            _CODE_VERSION = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = ""
        _CODE_VERSION = _CODE_VERSION or f"rubik-{rubik.__version__}"
    return _CODE_VERSION


# ----------------------------------------------------------------------------- the spec

def _sweep_dir(sweep_dir) -> Path:
    return Path(sweep_dir).expanduser()


def load_spec(sweep_dir) -> dict:
    """The ``sweep.json`` of a sweep directory (ValueError if there is none)."""
    path = _sweep_dir(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir}: not a sweep directory (no {SPEC_FILE}); create one with `rubik sweep init`")
    spec = _read_json(path)
    if spec.get("version") != SPEC_VERSION:
        raise ConfigError(f"{path}: unsupported sweep spec version {spec.get('version')!r}")
    return spec


def _template_dict(template) -> dict:
    if template is None:
        from rubik.train import TrainConfig

        template = TrainConfig()
    if dataclasses.is_dataclass(template):
        template = dataclasses.asdict(template)
    if not isinstance(template, dict):
        raise ConfigError(f"template must be a TrainConfig or a dict, got {type(template).__name__}")
    return _jsonable(template)


def init_sweep(sweep_dir, samples, template=None, *, meta: dict | None = None,
               trial_checkpoints: bool = False, force: bool = False, latency=True) -> Path:
    """Create ``sweep_dir/sweep.json`` from a ``sample_twists`` table and a TrainConfig template.

    Every trial trains ``template`` with its sample row's ``arch`` (``rubik.models.Arch.to_dict()``:
    base, twist, base resolution, rules; checked here) as ``model``; rows without one (hand-made
    tables, older specs) train ``model=base``, ``twist=(r, d, w)`` and ``base_resolution`` from
    the row (see ``trial_config``). Re-initialising an existing sweep is allowed only if
    the trials and template are identical (a no-op), or with ``force=True`` when no trial has a
    record yet. ``latency``: measure each trial's latency after training (True, or a dict
    overriding ``rubik.latency.TRIAL_LATENCY``); False turns it off.
    """
    import pandas as pd

    d = _sweep_dir(sweep_dir)
    if not isinstance(samples, pd.DataFrame):
        samples = pd.DataFrame(samples)
    if len(samples) == 0:
        raise ConfigError("init_sweep: no samples")
    for col in ("id", "base", "r", "d", "w"):
        if col not in samples.columns:
            raise ConfigError(f"init_sweep: samples lack column {col!r}")
    if samples["id"].duplicated().any():
        raise ConfigError(f"init_sweep: duplicate trial ids {samples['id'][samples['id'].duplicated()].tolist()}")
    bad = [i for i in samples["id"] if not str(i) or "/" in str(i) or str(i).startswith(".")]
    if bad:
        raise ConfigError(f"init_sweep: trial ids must be plain file names, got {bad}")
    for tid, arch in zip(samples["id"], samples["arch"] if "arch" in samples.columns else []):
        if isinstance(arch, dict):
            try:
                trial_arch({"arch": arch})
            except (ValueError, TypeError) as e:
                raise ConfigError(f"init_sweep: trial {tid}: {e}") from None
    spec = {
        "version": SPEC_VERSION,
        "created": _now(),
        "code_version": code_version(),
        "meta": _jsonable(meta or {}),
        "trial_checkpoints": bool(trial_checkpoints),
        "latency": latency if isinstance(latency, dict) else bool(latency),
        "template": _template_dict(template),
        "trials": _jsonable(samples.to_dict(orient="records")),
    }
    path = d / SPEC_FILE
    if path.exists():
        old = load_spec(d)
        same = _same_trials(old["trials"], spec["trials"]) and old["template"] == spec["template"]
        if same:
            return path
        n_done = len(list((d / "trials").glob("*.json"))) if (d / "trials").is_dir() else 0
        if not force:
            raise ConfigError(f"{path} exists with different trials/template; use another directory "
                             "(or force=True / --force if no trial has run)")
        if n_done:
            raise ConfigError(f"{path}: refusing to overwrite a sweep with {n_done} finished trial(s)")
    for sub in ("trials", "claims"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, spec)
    return path


def _same_trials(old: list, new: list) -> bool:
    """The same trials; a spec written before sample rows carried their ``arch`` is the same as
    today's rows without it (so re-running a finished study's command stays a no-op)."""
    if old == new:
        return True
    if any("arch" in t for t in old):
        return False
    return old == [{k: v for k, v in t.items() if k != "arch"} for t in new]


def trial_arch(trial: dict):
    """The :class:`rubik.models.Arch` a trial row trains: its ``arch``, or (rows without one)
    ``base``, ``r, d, w`` and ``base_resolution`` with the family's default rules."""
    from rubik.models import Arch

    if isinstance(trial.get("arch"), dict):
        return Arch.from_dict(trial["arch"])
    br = trial.get("base_resolution")
    br = None if br is None or (isinstance(br, float) and math.isnan(br)) else int(br)
    return Arch(trial["base"], (float(trial["r"]), float(trial["d"]), float(trial["w"])), br)


def trial_config(spec: dict, trial: dict, sweep_dir=None) -> dict:
    """The TrainConfig fields (a dict) of one trial: the template + this trial's model, and its own
    ``epochs`` and training ``seed`` where the trial row has them (a study that trains schedules and
    seeds in one sweep); rows without them (or NaN) keep the template's.

    The model is the row's ``arch`` dict (``TrainConfig.model``; ``twist`` and ``base_resolution``
    None), so the trained model is the sample's by construction. Rows without ``arch`` (specs
    written before samples carried it, hand-made rows) give ``model=base``, ``twist=[r, d, w]``
    and the row's ``base_resolution``, as they always did (their run signatures stay the same)."""
    cfg = copy.deepcopy(spec["template"])
    if isinstance(trial.get("arch"), dict):
        cfg["model"], cfg["twist"], cfg["base_resolution"] = copy.deepcopy(trial["arch"]), None, None
    else:
        cfg["model"] = trial["base"]
        cfg["twist"] = [float(trial["r"]), float(trial["d"]), float(trial["w"])]
        if trial.get("base_resolution") is not None:
            cfg["base_resolution"] = int(trial["base_resolution"])
    for key in TRIAL_FIELDS:
        value = trial.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            cfg[key] = int(value)
    if spec.get("trial_checkpoints") and sweep_dir is not None:
        cfg["out_dir"] = str(_sweep_dir(sweep_dir) / "runs" / str(trial["id"]))
        cfg["resume"] = "auto"   # a killed trial continues from its last epoch
    return cfg


def _record_path(d: Path, tid) -> Path:
    return d / "trials" / f"{tid}.json"


def _claim_path(d: Path, tid) -> Path:
    return d / "claims" / f"{tid}.claim"


#: record statuses: the trainer finished (done), raised (failed; retried with --retry-failed) or
#: stopped on a non-finite loss (diverged: a result, kept out of frontiers and fits)
RECORD_STATUSES = ("done", "failed", "diverged")


def _read_record(d: Path, tid):
    """The trial's record, or None if it has none. Records are written atomically, so an
    unreadable one was damaged afterwards: ``CorruptRecord`` (a ValueError) says how."""
    path = _record_path(d, tid)
    try:
        rec = _read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CorruptRecord(f"{path}: unreadable record ({type(e).__name__}: {e})") from None
    if not isinstance(rec, dict) or rec.get("status") not in RECORD_STATUSES:
        raise CorruptRecord(f"{path}: not a trial record (status {rec.get('status') if isinstance(rec, dict) else rec!r})")
    return rec


class CorruptRecord(ValueError):
    """A trial record that exists but cannot be read as one."""


def trial_state(d: Path, tid, stale_after: float | None = STALE_AFTER_S) -> tuple[str, dict | None, str | None]:
    """``(status, record, note)`` of one trial: the one reading that ``sweep_status``,
    ``load_results`` and the workers share. ``status``: done | failed | diverged (its record),
    corrupt (an unreadable record; ``note`` says why; the next run trains it again), running
    (a live claim), pending (no record; ``note`` is ``"stale"`` when a dead worker's claim is left)."""
    try:
        rec = _read_record(d, tid)
    except CorruptRecord as e:
        return "corrupt", None, str(e)
    if rec is not None:
        return rec["status"], rec, rec.get("error")
    state = claim_state(_claim_path(d, tid), stale_after)
    if state == "live":
        return "running", None, None
    return "pending", None, "stale" if state == "stale" else None


# ----------------------------------------------------------------------------- claims

Claim = Lock   # a held claim: heartbeat-touched until released


def _claim_info(worker) -> dict:
    return lock_info(worker=worker)


def claim_state(path: Path, stale_after: float | None = STALE_AFTER_S) -> str:
    """``"free"`` (no claim), ``"live"`` or ``"stale"`` (see ``rubik.rundir.lock_state``)."""
    return lock_state(path, stale_after)


def try_claim(sweep_dir, tid, worker=0, *, stale_after: float | None = STALE_AFTER_S,
              heartbeat: float = HEARTBEAT_S):
    """Claim trial ``tid``: a ``Claim`` if this process now owns it, else None. A claims folder
    that cannot be written (read-only, full) is a ``RunDirError`` naming it, before any training."""
    d = _sweep_dir(sweep_dir)
    path = _claim_path(d, tid)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return acquire(path, _claim_info(worker), stale_after=stale_after, heartbeat=heartbeat)
    except OSError as e:
        raise RunDirError(f"cannot claim trial {tid} in {path.parent}: {e.strerror} "
                          "(the sweep directory must be writable)") from e


# ----------------------------------------------------------------------------- training one trial

def _resolve_train_fn(train_fn) -> Callable[[dict], dict]:
    if train_fn is None:
        return default_train
    if callable(train_fn):
        return train_fn
    if isinstance(train_fn, str) and ":" in train_fn:
        mod, _, attr = train_fn.partition(":")
        return getattr(import_module(mod), attr)
    raise ConfigError(f"train_fn must be a callable or 'module:function', got {train_fn!r}")


def default_train(config: dict) -> dict:
    """Build a ``rubik.train.TrainConfig`` from the stored dict and run ``rubik.train.train``."""
    from rubik.data import DataConfig
    from rubik.train import TrainConfig, train

    cfg = dict(config)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"sweep template has fields TrainConfig does not know: {unknown}")
    if isinstance(cfg.get("data"), dict):
        cfg["data"] = DataConfig(**cfg["data"])
    # a dict recipe (a Recipe stored by asdict) is resolved by rubik.train itself
    if cfg.get("twist") is not None:
        cfg["twist"] = tuple(cfg["twist"])
    return train(TrainConfig(**cfg))


def _device_name(device) -> str:
    """What trained the trial: the GPU's name for a CUDA device, else the CPU's (from /proc/cpuinfo)."""
    dev = str(device or "auto")
    if dev.startswith("cuda") or dev == "auto":
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                index = int(dev.split(":")[1]) if ":" in dev else 0
                return torch.cuda.get_device_name(index)
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "cpu"


def _run_trial(d: Path, spec: dict, trial: dict, train_fn, *, worker, threads, device) -> dict:
    tid = trial["id"]
    cfg = trial_config(spec, trial, d)
    if threads is not None:
        cfg["threads"] = int(threads)
    if device is not None:
        cfg["device"] = device
    record = {"id": tid, "status": None, "sample": trial, "config": cfg, "metrics": None,
              "seed": cfg.get("seed"), "code_version": code_version(), "host": socket.gethostname(),
              "device_name": _device_name(cfg.get("device")), "pid": os.getpid(), "worker": worker,
              "started": _now()}
    t0 = time.time()
    try:
        metrics = train_fn(copy.deepcopy(cfg))
        if not isinstance(metrics, dict):
            raise TypeError(f"train function returned {type(metrics).__name__}, expected a dict of metrics")
        diverged = metrics.get("status") == "diverged"
        record.update(status="diverged" if diverged else "done", metrics=metrics)
        try:   # cheap, after training; a failure here does not fail the trial
            from rubik.latency import sweep_num_classes, trial_latency, trial_latency_options

            opts = trial_latency_options(spec.get("latency", True))
            if opts is not None and not diverged:
                metrics.update(trial_latency(cfg, sweep_num_classes(spec), opts))
        except Exception as exc:
            metrics["latency_error"] = f"{type(exc).__name__}: {exc}"
    except (UserError, OSError):
        raise   # the setup is wrong (data, disk, settings): stop; unrecorded, the trial runs again once fixed
    except Exception as exc:  # a failed trial is a result too; KeyboardInterrupt/SystemExit propagate
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record.update(finished=_now(), time_s=round(time.time() - t0, 3))
    _write_record(d, tid, record)
    return record


#: waits (s) between attempts to write a record before it is saved elsewhere (tests set them to 0)
RECORD_RETRY_S = (1.0, 5.0, 20.0)


def unsaved_dir() -> Path:
    """Where records that could not be written into their sweep are kept until the next run."""
    return Path(os.environ.get("RUBIK_CACHE_DIR") or Path.home() / ".cache" / "rubik") / "unsaved"


def _unsaved_path(folder: Path, d: Path, tid) -> Path:
    import hashlib

    key = hashlib.sha1(str(d.resolve()).encode()).hexdigest()[:12]
    return folder / f"{key}-{tid}.json"


def _write_record(d: Path, tid, record: dict) -> None:
    """Write the record, retrying a few times (a disk that is full for a moment); if it still
    fails, keep the trained result in the cache (or the temp folder) so no training is lost:
    the next ``run_worker`` on this sweep moves it in (``_recover_unsaved``)."""
    path = _record_path(d, tid)
    for wait in (*RECORD_RETRY_S, None):
        try:
            atomic_write_json(path, record)
            return
        except OSError as e:
            err = e
            if wait is not None:
                time.sleep(wait)
    import tempfile

    for folder in (unsaved_dir(), Path(tempfile.gettempdir()) / "rubik-unsaved"):
        keep = _unsaved_path(folder, d, tid)
        try:
            atomic_write_json(keep, {"sweep_dir": str(d.resolve()), "trial": tid, "record": record})
        except OSError:
            continue
        raise RunDirError(f"cannot write {path}: {err.strerror}; the result of trial {tid} is kept in {keep} "
                          f"and moved in by the next `rubik sweep run {d}` once the folder is writable")
    print(_jsonable(record), file=sys.stderr)   # nowhere left to write it: the log keeps it
    raise RunDirError(f"cannot write {path}: {err.strerror}; the result of trial {tid} could not be saved "
                      "anywhere else either and is printed above")


def _recover_unsaved(d: Path) -> list:
    """Move records kept by ``_write_record`` back into the sweep; returns their trial ids."""
    import tempfile

    moved = []
    for folder in (unsaved_dir(), Path(tempfile.gettempdir()) / "rubik-unsaved"):
        for keep in sorted(folder.glob(_unsaved_path(folder, d, "*").name)) if folder.is_dir() else []:
            try:
                kept = _read_json(keep)
            except (OSError, ValueError):
                continue
            if kept.get("sweep_dir") != str(d.resolve()):
                continue
            tid = kept["trial"]
            try:
                done = _read_record(d, tid)
            except CorruptRecord:
                done = None
            if done is None:
                atomic_write_json(_record_path(d, tid), kept["record"])
                print(f"rubik sweep: moved the record of trial {tid} kept in {keep} into {d}", file=sys.stderr)
                moved.append(tid)
            keep.unlink()
    return moved


ORDERS = ("spec", "short-first", "long-first")


def trial_costs(spec: dict) -> dict:
    """``{trial id: FLOPs x epochs}``, the training cost ``rubik.study.design_cost`` sums: a trial's own
    ``epochs`` where its row has them, else the template's (else its recipe's). A trial without
    ``flops`` costs nothing here (it is ordered first by ``short-first``)."""
    from rubik.study import training_cost

    out = {}
    for t in spec["trials"]:
        cfg = trial_config(spec, t)
        epochs = cfg.get("epochs")
        if epochs is None:
            from rubik.train import resolve_recipe

            epochs = resolve_recipe(cfg.get("recipe") or "proxy").epochs
        flops = t.get("flops")
        flops = 0.0 if flops is None or (isinstance(flops, float) and math.isnan(flops)) else float(flops)
        out[str(t["id"])] = training_cost(flops, float(epochs))
    return out


def order_trials(spec: dict, order: str = "spec") -> list:
    """The trial ids in the order workers take them: ``spec`` (as in ``sweep.json``), ``short-first`` or
    ``long-first`` by training cost (``trial_costs``; ties keep the spec's order). A run cut short by a
    deadline finishes the most trials with ``short-first``."""
    if order not in ORDERS:
        raise ConfigError(f"unknown trial order {order!r}; expected one of {', '.join(ORDERS)}")
    ids = [str(t["id"]) for t in spec["trials"]]
    if order == "spec":
        return ids
    cost = trial_costs(spec)
    sign = 1 if order == "short-first" else -1
    return sorted(ids, key=lambda tid: sign * cost[tid])   # stable: ties in spec order


def _worker_order(ids, worker, workers, steal):
    own = ids[worker::workers]
    if not steal:
        return own
    own_set = set(own)
    # others in an order rotated by worker, so helpers don't all pile onto the same trial
    rest = [t for t in ids if t not in own_set]
    k = (worker * len(rest)) // max(workers, 1) if rest else 0
    return own + rest[k:] + rest[:k]


def _pop_torchrun_env():
    for k in _TORCHRUN_ENV:
        os.environ.pop(k, None)


def run_worker(sweep_dir, *, worker: int = 0, workers: int = 1, threads: int | None = None,
               device: str | None = None, train_fn=None, steal: bool = True, retry_failed: bool = False,
               max_trials: int | None = None, stale_after: float | None = STALE_AFTER_S,
               heartbeat: float = HEARTBEAT_S, on_trial: Callable | None = None,
               on_start: Callable | None = None, order: str = "spec") -> list:
    """Train unclaimed, unfinished trials one after another in this process; return their ids.

    ``worker``/``workers`` choose this worker's share (visited first); ``threads`` sets torch's
    intra-op threads and the trial's ``TrainConfig.threads``; ``device`` overrides the template's;
    ``train_fn`` (callable or ``"module:function"``, taking the config dict and returning a metrics
    dict) replaces ``rubik.train.train``; ``max_trials`` stops after that many trials; ``order``
    (``order_trials``: ``spec``, ``short-first``, ``long-first``) is the order the shares are cut from;
    ``on_start(trial_id)`` / ``on_trial(record)`` are called around each trial.
    """
    if workers < 1 or not 0 <= worker < workers:
        raise ConfigError(f"worker index must satisfy 0 <= worker < workers, got worker={worker}, workers={workers}")
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    fn = _resolve_train_fn(train_fn)
    _pop_torchrun_env()  # each trial trains alone, never as one rank of a DDP job
    if threads is not None:
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(int(threads))
    for sub in ("trials", "claims"):   # temp files of writers killed mid-write
        clean_stale_tmp(d / sub)
    _recover_unsaved(d)
    trials = {str(t["id"]): t for t in spec["trials"]}
    order = _worker_order(order_trials(spec, order), worker, workers, steal)

    def wanted(tid):
        status, _, _ = trial_state(d, tid, stale_after)
        return status in ("pending", "corrupt") or (status == "failed" and retry_failed)

    done_here, attempted = [], set()
    while True:
        claimed_any = False
        for tid in order:
            if max_trials is not None and len(done_here) >= max_trials:
                return done_here
            if tid in attempted or not wanted(tid):  # at most one attempt per trial per run (failed ones too)
                continue
            claim = try_claim(d, tid, worker, stale_after=stale_after, heartbeat=heartbeat)
            if claim is None:
                continue
            with claim:
                claimed_any = True
                status, _, _ = trial_state(d, tid, stale_after)  # finished by someone between check and claim?
                if status not in ("pending", "running", "corrupt") and not (status == "failed" and retry_failed):
                    continue
                if status == "corrupt":   # keep the damaged file for inspection; it is retrained
                    path = _record_path(d, tid)
                    os.replace(path, path.with_name(f"{path.name}.corrupt"))
                attempted.add(tid)
                if on_start is not None:
                    on_start(tid)
                rec = _run_trial(d, spec, trials[tid], fn, worker=worker, threads=threads, device=device)
                done_here.append(tid)
            if on_trial is not None:
                on_trial(rec)
        if not claimed_any:
            return done_here


def _die_with_parent(parent_pid: int, every: float = 1.0) -> None:
    """SIGTERM this process when its parent dies (a SIGKILLed ``sweep run`` must not leave
    workers training as orphans): Linux's ``PR_SET_PDEATHSIG``, plus a thread that watches the
    parent pid (other systems, and a parent that died before the ``prctl``)."""
    import threading

    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))   # 1 = PR_SET_PDEATHSIG

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="rubik-parent-watch").start()


def _worker_main(sweep_dir, kwargs, env, parent_pid=None):
    """Entry point of a spawned local worker process. A user error (data, disk, settings) is one
    line on stderr and exit status 2; the parent then stops with one line too."""
    os.environ.update(env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run `finally`s: release the claim
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    try:
        run_worker(sweep_dir, **kwargs)
    except (UserError, OSError) as e:
        from rubik.cli import format_error

        print(format_error("sweep run", e), file=sys.stderr)
        sys.exit(2)


def _env_worker():
    """(worker, workers, local_rank) from torchrun or SLURM variables, else (0, 1, None)."""
    e = os.environ
    if "RANK" in e and "WORLD_SIZE" in e:
        return int(e["RANK"]), int(e["WORLD_SIZE"]), int(e.get("LOCAL_RANK", 0))
    if "SLURM_ARRAY_TASK_ID" in e and "SLURM_ARRAY_TASK_COUNT" in e:
        lo = int(e.get("SLURM_ARRAY_TASK_MIN", 0))
        return int(e["SLURM_ARRAY_TASK_ID"]) - lo, int(e["SLURM_ARRAY_TASK_COUNT"]), None
    if "SLURM_PROCID" in e and "SLURM_NTASKS" in e:
        return int(e["SLURM_PROCID"]), int(e["SLURM_NTASKS"]), int(e.get("SLURM_LOCALID", 0))
    return 0, 1, None


def _auto_devices(spec, processes, device=None):
    """The local workers' devices, one per process, or None (each trial uses the template's device).

    ``device`` (else the template's) ``"cuda"``/``"auto"`` with GPUs present: ``cuda:k`` round-robin, so
    with more processes than GPUs several workers share each GPU (small models leave a GPU mostly
    idle: ``--device cuda --processes 12`` runs 12 trials at once on one). An explicit ``device``
    such as ``cpu`` or ``cuda:1`` is given to every worker. A single process without an explicit
    device keeps the template's (``train`` then picks ``cuda:0``).
    """
    dev = str(device or spec["template"].get("device", "auto"))
    n = _cuda_count() if dev.startswith("cuda") or dev == "auto" else 0
    if device and dev.startswith("cuda"):   # asked for on the command line: say so now, not in every trial
        if n == 0:
            raise ConfigError(f"--device {dev}: no CUDA device is available here (torch.cuda.is_available() "
                              "is False); use --device cpu, or run on a GPU node")
        if ":" in dev and not (dev.split(":", 1)[1].isdigit() and int(dev.split(":", 1)[1]) < n):
            raise ConfigError(f"--device {dev}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    if dev not in ("auto", "cuda"):
        return [dev] * processes if device else None
    if n == 0:
        return [dev] * processes if device else None
    if processes <= 1 and device is None:
        return None
    return [f"cuda:{i % n}" for i in range(processes)]


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0


def _default_threads(devices, processes) -> int | None:
    """torch threads per worker when not given: CPU workers share the cores; GPU workers need few
    (their work is on the GPU; 12 workers x 16 threads would oversubscribe a 16-core node)."""
    cores = os.cpu_count() or 1
    if devices and all(str(x).startswith("cuda") for x in devices):
        return max(1, min(2, cores // processes))
    if processes > 1:
        return max(1, cores // processes)
    return None


def run_sweep(sweep_dir, *, worker: int = 0, workers: int = 1, processes: int = 1, threads: int | None = None,
              progress: bool = True, devices=None, train_fn=None, steal: bool = True,
              retry_failed: bool = False, stale_after: float | None = STALE_AFTER_S,
              heartbeat: float = HEARTBEAT_S, poll: float = 2.0, device: str | None = None, wait: bool = True,
              order: str = "spec"):
    """Run this machine's part of a sweep: ``processes`` local workers, then return ``load_results``.

    With ``wait`` (default) it returns only when every trial has a record: trials that other
    processes are training are waited for, and taken over if those processes die. Without it,
    it returns once this machine has nothing left to claim (check ``status`` in the result).

    Local process ``k`` is global worker ``worker * processes + k`` of ``workers * processes``.
    ``devices``: one device string per local process (default from ``device``, else the template's
    device: with ``cuda``/``auto`` and GPUs present, ``cuda:k`` round-robin over the GPUs, several
    processes per GPU when ``processes`` exceeds their number; see ``_auto_devices``). ``threads``
    defaults to ``cpu_count // processes`` on CPU and to 1-2 per GPU worker. ``progress`` shows a
    tqdm bar (trials done across all workers / total, running, failed, ETA). ``order``: which trials
    are taken first (``order_trials``; ``short-first`` for a run against a deadline).
    """
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    order_trials(spec, order)   # an unknown order (or a cost that cannot be worked out) fails here, once
    if processes < 1:
        raise ConfigError(f"processes must be >= 1, got {processes}")
    if workers < 1 or not 0 <= worker < workers:
        raise ConfigError(f"worker index must satisfy 0 <= worker < workers, got worker={worker}, workers={workers}")
    if isinstance(devices, str):
        devices = [x for x in devices.split(",") if x]
    if devices is None:
        devices = _auto_devices(spec, processes, device)
    if threads is None:   # don't oversubscribe the cores
        threads = _default_threads(devices, processes)
    common = dict(threads=threads, train_fn=train_fn, steal=steal, retry_failed=retry_failed,
                  stale_after=stale_after, heartbeat=heartbeat, order=order)
    bar = _ProgressBar(d, spec, enabled=progress)
    try:
        while True:
            _run_local_workers(d, worker, workers, processes, devices, common, bar, poll)
            bar.refresh()
            st = sweep_status(d, spec=spec, stale_after=stale_after)
            # done only when every trial has a record: trials claimed elsewhere are waited for (and
            # taken over if their worker dies); unclaimed ones get another pass (our share only
            # without steal: the others are other workers' to train)
            if not wait or not (st["running"] or (st["left"] + st["corrupt"] and steal)):
                break
            time.sleep(poll)
    finally:
        bar.close()
    return load_results(d)


def _run_local_workers(d, worker, workers, processes, devices, common, bar, poll):
    if processes == 1:
        dev = devices[0] if devices else None
        run_worker(d, worker=worker, workers=workers, device=dev, on_trial=lambda rec: bar.refresh(),
                   on_start=lambda tid: bar.refresh(), **common)
        return
    import multiprocessing as mp

    train_fn = common["train_fn"]
    if callable(train_fn) and getattr(train_fn, "__module__", None) == "__main__":
        raise ConfigError("with processes > 1, pass train_fn as an importable 'module:function'")
    ctx = mp.get_context("spawn")
    procs = []
    for k in range(processes):
        kw = dict(common, worker=worker * processes + k, workers=workers * processes,
                  device=devices[k % len(devices)] if devices else None)
        p = ctx.Process(target=_worker_main, args=(str(d), kw, {}, os.getpid()), name=f"rubik-sweep-{k}")
        p.start()
        procs.append(p)
    try:
        while any(p.is_alive() for p in procs):
            bar.refresh()
            for p in procs:
                p.join(timeout=poll / max(len(procs), 1))
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=30)
        raise
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if 2 in bad:
        raise UserError(f"{bad.count(2)} sweep worker process(es) stopped on the error(s) printed above")
    if bad:
        raise RuntimeError(f"sweep worker process(es) exited with {bad}; see their output above")


class _ProgressBar:
    def __init__(self, d, spec, enabled=True):
        self.d, self.total = d, len(spec["trials"])
        self.bar, self._last, self._shown = None, None, 0.0
        # redraw the clock every 2 s on a terminal; in logs and papermill outputs only on a change or
        # once a minute (a 6-hour sweep would otherwise write ~1 MB of progress lines)
        self._every = 2.0 if sys.stderr.isatty() else 60.0
        if enabled:
            from tqdm.auto import tqdm

            st = sweep_status(d, spec=spec)
            self.bar = tqdm(total=self.total, initial=st["done"] + st["failed"] + st["diverged"], desc="sweep",
                            unit="trial",
                            dynamic_ncols=True)
            self._set(st)

    def _set(self, st):
        self.bar.set_postfix(running=st["running"], failed=st["failed"] + st["diverged"], left=st["left"],
                             refresh=False)

    def refresh(self):
        if self.bar is None:
            return
        st = sweep_status(self.d)
        finished = st["done"] + st["failed"] + st["diverged"]
        self._set(st)
        now, changed = time.monotonic(), st != self._last
        self._last = st
        if finished > self.bar.n:
            self.bar.update(finished - self.bar.n)
        elif changed or now - self._shown >= self._every:
            self.bar.refresh()
        else:
            return
        self._shown = now

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- results

def sweep_status(sweep_dir, *, spec=None, stale_after: float | None = STALE_AFTER_S) -> dict:
    """Counts: ``total, done, failed, diverged, corrupt, running, stale, left`` (left = no record
    and not running; stale = left with a dead worker's claim) from ``trial_state``."""
    d = _sweep_dir(sweep_dir)
    spec = spec or load_spec(d)
    out = dict(total=len(spec["trials"]), done=0, failed=0, diverged=0, corrupt=0, running=0, stale=0, left=0)
    for t in spec["trials"]:
        status, _, note = trial_state(d, str(t["id"]), stale_after)
        out["left" if status == "pending" else status] += 1
        out["stale"] += note == "stale"
    return out


def load_results(sweep_dir, *, metrics=METRIC_COLUMNS, split_seed: int | None = None):
    """One row per trial: the sample columns, ``status`` (done | failed | diverged | corrupt |
    running | pending, see ``trial_state``), the scalar ``metrics`` (NaN until done), ``time_s``,
    ``code_version``, ``error``.

    Metric names that clash with sample columns (``params``, ``flops``, ``resolution``) are not
    copied; the sample's analytic values are the reference. Filter with ``df[df.status == "done"]``
    (frontiers and fits do: a diverged trial's chance-level accuracy is not a result about its dials).

    Records with per-image outcomes (``val_correct``, see ``rubik.data.pack_correct``) are also
    scored on the two halves of ``rubik.data.val_split(labels, split_seed)`` (default
    ``rubik.data.SPLIT_SEED``): columns ``top1_select``, ``top1_test`` (and ``ema_top1_select``,
    ``ema_top1_test`` with EMA); NaN for records without them (older ones).
    """
    import numpy as np
    import pandas as pd

    from rubik.data import SPLIT_SEED, split_top1

    split_seed = SPLIT_SEED if split_seed is None else split_seed
    halves = {"val_correct": "top1", "ema_val_correct": "ema_top1"}
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    rows = []
    for t in spec["trials"]:
        row = dict(t)
        tid = str(t["id"])
        row["status"], rec, note = trial_state(d, tid)
        if row["status"] == "corrupt":
            row["error"] = note
        if rec is not None:
            row["time_s"] = rec.get("time_s")
            row["code_version"] = rec.get("code_version")
            row["error"] = rec.get("error")
            m = rec.get("metrics") or {}
            for k in metrics:
                if k not in t:
                    row[k] = m.get(k)
            for key, col in halves.items():
                if m.get(key):
                    scores = split_top1(m[key], split_seed)
                    row[f"{col}_select"], row[f"{col}_test"] = scores["select"], scores["test"]
        for k in metrics:
            row.setdefault(k, np.nan)
        for col in ("top1_select", "top1_test"):
            row.setdefault(col, np.nan)
        rows.append(row)
    df = pd.DataFrame(rows)
    for k in list(metrics) + [f"{c}_{h}" for c in halves.values() for h in ("select", "test")]:
        if k in df.columns:
            df[k] = pd.to_numeric(df[k], errors="coerce")
    return df


def load_correct(sweep_dir, key: str = "val_correct") -> dict:
    """``{trial id: (correct, labels)}`` (numpy bool / int arrays in val-manifest order) of every
    finished trial whose record holds per-image outcomes ``key`` (``val_correct`` or
    ``ema_val_correct``): for paired per-image tests (McNemar) and bootstraps over images."""
    from rubik.data import unpack_correct

    d = _sweep_dir(sweep_dir)
    out = {}
    for t in load_spec(d)["trials"]:
        rec = _read_record(d, str(t["id"]))
        m = (rec or {}).get("metrics") or {}
        if rec and rec.get("status") == "done" and m.get(key):
            out[str(t["id"])] = unpack_correct(m[key])
    return out


# ----------------------------------------------------------------------------- CLI

def _parse_ranges(text):
    """``r=0.5:1.4,d=0.3:1.6`` -> {"r": (0.5, 1.4), "d": (0.3, 1.6)}."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        try:
            k, _, v = part.partition("=")
            lo, _, hi = v.partition(":")
            out[k.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ConfigError(f"--ranges: cannot parse {part!r}; expected e.g. r=0.5:1.4,d=0.3:1.6") from None
    return out


def _parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _count_classes(root):
    train = Path(root) / "train"
    if train.is_dir():
        n = sum(1 for p in train.iterdir() if p.is_dir())
        return n or None
    return None


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="sweep_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("init", help="sample twisted models and write DIR/sweep.json")
    p.add_argument("dir")
    p.add_argument("--n", type=int, default=100, help="random models (default 100)")
    p.add_argument("--base", default="efficientnet_b0", help="efficientnet_b0 | ghostnet_a | resnet50 | ...")
    p.add_argument("--base-resolution", type=int, default=None, help="px at r=1 (proxy runs: 64); default the family's")
    p.add_argument("--mode", default="uniform", choices=["uniform", "stratified"])
    p.add_argument("--ranges", default=None, help="dial ranges, e.g. r=0.5:1.4,d=0.3:1.6,w=0.3:1.4")
    p.add_argument("--c-min", type=float, default=None, help="smallest FLOPs ratio kept (default 0.05)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the sampling")
    p.add_argument("--no-references", action="store_true", help="no base / inversed-giant reference models")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes for the FLOPs count (default: class folders under DATA/train, else 1000)")
    p.add_argument("--data", default=None, help="ImageFolder root (train/, val/); default $RUBIK_DATA_DIR")
    p.add_argument("--dataset", default="imagenette", help="DataConfig.name")
    p.add_argument("--train-per-class", type=int, default=None)
    p.add_argument("--val-per-class", type=int, default=None)
    p.add_argument("--recipe", default="proxy")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="training seed (the same for every trial)")
    p.add_argument("--device", default="auto")
    p.add_argument("-p", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig field (data.KEY for DataConfig, recipe.KEY for a recipe field), "
                        "JSON-parsed; repeatable")
    p.add_argument("--trial-checkpoints", action="store_true",
                   help="checkpoint every trial in DIR/runs/<id> so a killed trial resumes mid-way")
    p.add_argument("--force", action="store_true", help="overwrite a sweep.json that has no finished trials")
    p.add_argument("--no-latency", action="store_true",
                   help="do not measure each trial's CPU latency after training (1 thread, batch 1)")

    p = sub.add_parser("run", help="train the sweep's unfinished trials (resumable, parallel-safe)")
    p.add_argument("dir")
    p.add_argument("--worker", type=int, default=None, help="this worker's index (default torchrun/SLURM env, else 0)")
    p.add_argument("--workers", type=int, default=None, help="number of workers across machines")
    p.add_argument("--processes", type=int, default=1,
                   help="local worker processes; on GPUs spread round-robin, several per GPU if more than GPUs")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker (default: cores / processes on CPU, 1-2 per GPU worker)")
    p.add_argument("--device", default=None,
                   help="device for every trial, overriding the template's: cpu, cuda (spread over the GPUs), cuda:1")
    p.add_argument("--devices", default=None, help="comma list, one per local process (default cuda:k if GPUs)")
    p.add_argument("--order", default="spec", choices=ORDERS,
                   help="which trials first: spec (sweep.json's order), short-first / long-first by training "
                        "cost, FLOPs x epochs (short-first: most records from a run cut short by a deadline)")
    p.add_argument("--no-steal", action="store_true", help="train only this worker's share")
    p.add_argument("--retry-failed", action="store_true", help="train trials whose record says failed again")
    p.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                   help="seconds without heartbeat after which another host's claim is stale")
    p.add_argument("--train-fn", default=None, help="module:function replacing rubik.train.train (testing)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-wait", action="store_true",
                   help="return when nothing is left to claim here, without waiting for trials running elsewhere "
                        "(exit status 2 while any trial is unfinished)")

    p = sub.add_parser("status", help="progress and the best trials so far")
    p.add_argument("dir")
    p.add_argument("--top", type=int, default=10, help="show this many best trials")


def _cmd_init(args) -> int:
    import pandas as pd

    from rubik.data import DataConfig
    from rubik.train import TrainConfig

    data = DataConfig(root=args.data, name=args.dataset, train_per_class=args.train_per_class,
                      val_per_class=args.val_per_class)
    tmpl = dataclasses.asdict(TrainConfig(data=data, recipe=args.recipe, epochs=args.epochs,
                                          batch_size=args.batch_size, seed=args.seed, device=args.device,
                                          progress=False))
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"-p {item!r}: expected KEY=VALUE")
        if key.startswith("recipe."):
            # -p recipe.eval_every=4: change one field of the named recipe
            from rubik.train import resolve_recipe

            tmpl["recipe"] = _jsonable(dataclasses.asdict(resolve_recipe(tmpl["recipe"])))
            target, field = tmpl["recipe"], key[7:]
        elif key.startswith("data."):
            target, field = tmpl["data"], key[5:]
        else:
            target, field = tmpl, key
        if field not in target:
            raise ConfigError(f"-p {key}: unknown field {field!r}; expected one of {sorted(target)} "
                             f"(data.KEY for DataConfig, recipe.KEY for the recipe)")
        target[field] = _parse_value(value)
    num_classes = args.num_classes or (_count_classes(args.data) if args.data else None) or 1000
    kw = dict(mode=args.mode, ranges=_parse_ranges(args.ranges), base_resolution=args.base_resolution,
              num_classes=num_classes, include_references=not args.no_references, seed=args.sample_seed)
    if args.c_min is not None:
        kw["c_min"] = args.c_min
    try:   # the sampler's ValueErrors are about these arguments (unknown base, impossible ranges)
        samples = sample_twists(args.n, args.base, **kw)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    meta = {"sampling": dict(kw, n=args.n, base=args.base), "command": " ".join(sys.argv)}
    path = init_sweep(args.dir, samples, tmpl, meta=meta, trial_checkpoints=args.trial_checkpoints, force=args.force,
                      latency=not args.no_latency)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        cols = [c for c in ("id", "kind", "r", "d", "w", "resolution", "params", "flops", "flops_ratio") if c in samples]
        print(samples[cols].to_string(index=False, max_rows=20))
    print(f"\n{len(samples)} trials ({(samples['kind'] == 'random').sum()} random) -> {path}")
    return 0


def _cmd_run(args) -> int:
    ew, ewn, local_rank = _env_worker()
    worker = args.worker if args.worker is not None else ew
    workers = args.workers if args.workers is not None else ewn
    devices = args.devices
    if devices is None and args.device in (None, "auto", "cuda") and local_rank is not None and "LOCAL_RANK" in os.environ:
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                devices = f"cuda:{local_rank % torch.cuda.device_count()}"
    _pop_torchrun_env()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # scancel / kill: release the claim first
    df = run_sweep(args.dir, worker=worker, workers=workers, processes=args.processes, threads=args.threads,
                   devices=devices, device=args.device, train_fn=args.train_fn, steal=not args.no_steal,
                   retry_failed=args.retry_failed, stale_after=args.stale_after, progress=not args.no_progress,
                   wait=not args.no_wait, order=args.order)
    counts = df["status"].value_counts().to_dict()
    print(f"sweep {args.dir}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    unfinished = df[df["status"].isin(["pending", "running", "corrupt"])]
    if len(unfinished):   # never report success while trials are left
        raise RunDirError(f"{len(unfinished)} trial(s) not finished ({', '.join(unfinished['id'].astype(str)[:5])}"
                          f"{', ...' if len(unfinished) > 5 else ''}): other workers hold them or they are not "
                          f"this worker's share; rerun `rubik sweep run {args.dir}` to finish them")
    return 0


def remaining_work(results) -> float:
    """Worker-seconds the unfinished trials of ``load_results`` will take, from the finished ones.

    Trial time is fitted as ``a + b * flops`` (a straight line: a per-step floor plus compute)
    on the finished trials, when there are at least 3 with different FLOPs; otherwise every trial
    is assumed to take the mean time. Each prediction is kept within the observed times.
    """
    import numpy as np

    d = results[results["status"] == "done"].dropna(subset=["time_s"])
    todo = results[results["status"] != "done"]
    if not len(d) or not len(todo):
        return 0.0
    t = d["time_s"].to_numpy(float)
    if "flops" in d and d["flops"].nunique() >= 3 and todo["flops"].notna().all():
        b, a = np.polyfit(d["flops"].to_numpy(float), t, 1)
        pred = np.clip(a + b * todo["flops"].to_numpy(float), t.min(), t.max())
    else:
        pred = np.full(len(todo), t.mean())
    return float(pred.sum())


def _cmd_status(args) -> int:
    st = sweep_status(args.dir)
    print(f"{args.dir}: {st['done']}/{st['total']} done, {st['running']} running, {st['failed']} failed, "
          + "".join(f"{st[k]} {k}, " for k in ("diverged", "corrupt") if st[k]) + f"{st['left']} left" + (f" ({st['stale']} with stale claims)" if st["stale"] else ""))
    df = load_results(args.dir)
    done = df[df.status == "done"]
    if len(done):
        if "time_s" in done and done["time_s"].notna().any() and st["left"] + st["running"]:
            left_s = remaining_work(df)
            print(f"mean trial time {float(done['time_s'].mean()):.1f} s; remaining work ~{left_s / 3600:.1f} "
                  f"worker-hours (time fitted against FLOPs on {int(done['time_s'].notna().sum())} finished trials)")
        cols = [c for c in ("id", "kind", "r", "d", "w", "resolution", "flops_ratio", "top1", "ema_top1", "time_s")
                if c in done]
        print(done.sort_values("top1", ascending=False)[cols].head(args.top).to_string(index=False))
    for row in df[df.status.isin(["failed", "diverged", "corrupt"])].itertuples():
        why = row.error if isinstance(row.error, str) else "non-finite training loss" if row.status == "diverged" else ""
        print(f"{row.status} {row.id}: {why}")
    return 0


def main(args) -> int:
    return {"init": _cmd_init, "run": _cmd_run, "status": _cmd_status}[args.sweep_command](args)
