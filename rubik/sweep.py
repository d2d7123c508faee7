"""The study: train many randomly twisted models with one recipe, resumably and in parallel.

A sweep is a directory::

    DIR/sweep.json           the spec: sampled trials (one row of ``sample_twists`` each) + TrainConfig template
    DIR/trials/<id>.json     one record per finished trial, written atomically (tmp file + os.replace)
    DIR/claims/<id>.claim    "a worker is training this trial" (created with O_CREAT|O_EXCL)
    DIR/runs/<id>/           per-trial checkpoints, only with ``trial_checkpoints`` (then a killed
                             trial resumes from its last epoch instead of restarting)

A record holds the trial's sample row (r, d, w, px, repeats, channels, params, FLOPs, ratio), the
full TrainConfig it ran with, the metrics ``train()`` returned, start/end time and duration, the
code version (``git describe``), the seed, host, pid and worker. Re-running a sweep skips trials
with a record, so a killed sweep loses at most the trials in flight; ``status == "failed"``
records (the trainer raised) are kept with the traceback and are retried only with
``--retry-failed``, except failures of the set-up (``rubik.data.DataError``: data not found or
unreadable), which the next run retries by itself once the set-up is fixed.

Claims make parallel workers safe without a scheduler: a worker trains a trial only after creating
its claim file atomically, re-checks that no record appeared meanwhile, and deletes the claim after
the record is written. A claim is *stale* (and gets taken over) when its process is gone: same host
and the pid is dead or was reused (process start time differs), or, for any host, its file has not
been touched for ``stale_after`` seconds (a heartbeat thread touches live claims every 30 s).
Stale take-overs happen under an ``fcntl`` lock on ``claims/.lock``, so two workers cannot both
take over one stale claim.

Workers visit their own share first (trials ``i, i+n, i+2n, ...`` for ``--worker i --workers n``)
and then help with the rest (claims keep that safe; ``--no-steal`` turns it off).

Launching (there is no scheduler beyond the claims; use what you have)::

    # describe the sweep once (paper-like: 100 random twists of B0 + base + giant phi=-1..-4)
    rubik sweep init runs/sweep --n 100 --base efficientnet_b0 --base-resolution 64 \\
        --data /data/imagenette --recipe proxy --epochs 30

    # one machine, CPU: 4 worker processes x 4 threads each, with a progress bar
    rubik sweep run runs/sweep --processes 4 --threads 4

    # one machine, 8 GPUs: one worker per device (cuda:0..7), either of
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
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from importlib import import_module
from pathlib import Path
from typing import Callable

SPEC_FILE = "sweep.json"
SPEC_VERSION = 1
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
#: scalar metrics copied from a record into ``load_results`` (the rest stays in the JSON)
METRIC_COLUMNS = ("top1", "top5", "ema_top1", "ema_top5", "best_top1", "epochs", "train_time_s", "images_per_s")
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_WORLD_SIZE")

from rubik.sampling import sample_twists  # noqa: E402  (re-exported: rubik.sweep.sample_twists)

__all__ = ["sample_twists", "init_sweep", "run_sweep", "run_worker", "load_results", "load_spec",
           "sweep_status", "trial_config", "add_arguments", "main"]


# ----------------------------------------------------------------------------- small utilities

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj):
    """Best-effort conversion to JSON types (numpy / torch scalars, tuples, dataclasses, paths)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return _jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    return str(obj)


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (same-dir tmp file, fsync, os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(obj), f, indent=1, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path):
    with open(path) as f:
        return json.load(f)


_CODE_VERSION = None


def code_version() -> str:
    """``git describe --always --dirty --tags`` of the rubik checkout, else ``rubik-<version>``."""
    global _CODE_VERSION
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


def _pid_start(pid: int):
    """Process start time (clock ticks since boot) from /proc, or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int, start=None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is not None:
        now = _pid_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True


# ----------------------------------------------------------------------------- the spec

def _sweep_dir(sweep_dir) -> Path:
    return Path(sweep_dir).expanduser()


def load_spec(sweep_dir) -> dict:
    """The ``sweep.json`` of a sweep directory (ValueError if there is none)."""
    path = _sweep_dir(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise ValueError(f"{sweep_dir}: not a sweep directory (no {SPEC_FILE}); create one with `rubik sweep init`")
    spec = _read_json(path)
    if spec.get("version") != SPEC_VERSION:
        raise ValueError(f"{path}: unsupported sweep spec version {spec.get('version')!r}")
    return spec


def _template_dict(template) -> dict:
    if template is None:
        from rubik.train import TrainConfig

        template = TrainConfig()
    if dataclasses.is_dataclass(template):
        template = dataclasses.asdict(template)
    if not isinstance(template, dict):
        raise ValueError(f"template must be a TrainConfig or a dict, got {type(template).__name__}")
    return _jsonable(template)


def init_sweep(sweep_dir, samples, template=None, *, meta: dict | None = None,
               trial_checkpoints: bool = False, force: bool = False) -> Path:
    """Create ``sweep_dir/sweep.json`` from a ``sample_twists`` table and a TrainConfig template.

    Every trial trains ``template`` with ``model=base``, ``twist=(r, d, w)`` and
    ``base_resolution`` from its sample row. Re-initialising an existing sweep is allowed only if
    the trials and template are identical (a no-op), or with ``force=True`` when no trial has a
    record yet.
    """
    import pandas as pd

    d = _sweep_dir(sweep_dir)
    if not isinstance(samples, pd.DataFrame):
        samples = pd.DataFrame(samples)
    if len(samples) == 0:
        raise ValueError("init_sweep: no samples")
    for col in ("id", "base", "r", "d", "w"):
        if col not in samples.columns:
            raise ValueError(f"init_sweep: samples lack column {col!r}")
    if samples["id"].duplicated().any():
        raise ValueError(f"init_sweep: duplicate trial ids {samples['id'][samples['id'].duplicated()].tolist()}")
    bad = [i for i in samples["id"] if not str(i) or "/" in str(i) or str(i).startswith(".")]
    if bad:
        raise ValueError(f"init_sweep: trial ids must be plain file names, got {bad}")
    spec = {
        "version": SPEC_VERSION,
        "created": _now(),
        "code_version": code_version(),
        "meta": _jsonable(meta or {}),
        "trial_checkpoints": bool(trial_checkpoints),
        "template": _template_dict(template),
        "trials": _jsonable(samples.to_dict(orient="records")),
    }
    path = d / SPEC_FILE
    if path.exists():
        old = load_spec(d)
        same = old["trials"] == spec["trials"] and old["template"] == spec["template"]
        if same:
            return path
        n_done = len(list((d / "trials").glob("*.json"))) if (d / "trials").is_dir() else 0
        if not force:
            raise ValueError(f"{path} exists with different trials/template; use another directory "
                             "(or force=True / --force if no trial has run)")
        if n_done:
            raise ValueError(f"{path}: refusing to overwrite a sweep with {n_done} finished trial(s)")
    for sub in ("trials", "claims"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, spec)
    return path


def trial_config(spec: dict, trial: dict, sweep_dir=None) -> dict:
    """The TrainConfig fields (a dict) of one trial: the template + this trial's model and dials."""
    cfg = copy.deepcopy(spec["template"])
    cfg["model"] = trial["base"]
    cfg["twist"] = [float(trial["r"]), float(trial["d"]), float(trial["w"])]
    if trial.get("base_resolution") is not None:
        cfg["base_resolution"] = int(trial["base_resolution"])
    if spec.get("trial_checkpoints") and sweep_dir is not None:
        cfg["out_dir"] = str(_sweep_dir(sweep_dir) / "runs" / str(trial["id"]))
        cfg["resume"] = True
    return cfg


def _record_path(d: Path, tid) -> Path:
    return d / "trials" / f"{tid}.json"


def _claim_path(d: Path, tid) -> Path:
    return d / "claims" / f"{tid}.claim"


def _read_record(d: Path, tid):
    try:
        return _read_json(_record_path(d, tid))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):  # unreadable: treat as missing (it was never os.replace'd)
        return None


# ----------------------------------------------------------------------------- claims

class Claim:
    """An exclusive claim on one trial, with a heartbeat thread while it is held."""

    def __init__(self, path: Path, info: dict, heartbeat: float = HEARTBEAT_S):
        self.path = path
        self.info = info
        self._stop = threading.Event()
        self._thread = None
        if heartbeat and heartbeat > 0:
            self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
            self._thread.start()

    def _beat(self, every):
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self):
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            current = _read_json(self.path)
            if current.get("token") == self.info["token"]:
                os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _claim_info(worker) -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": _pid_start(pid), "worker": worker,
            "time": _now(), "token": f"{socket.gethostname()}:{pid}:{time.time_ns()}"}


def _create_claim(path: Path, info: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    return True


def claim_state(path: Path, stale_after: float | None = STALE_AFTER_S) -> str:
    """``"free"`` (no claim), ``"live"`` or ``"stale"``."""
    try:
        info = _read_json(path)
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return "free"
    except (OSError, json.JSONDecodeError):
        # being written right now, or a torn file from a crash: judge by age only
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return "free"
        return "stale" if age > 60 else "live"
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        if not _pid_alive(info["pid"], info.get("pid_start")):
            return "stale"
        return "live"
    if stale_after is not None and time.time() - mtime > stale_after:
        return "stale"
    return "live"


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def try_claim(sweep_dir, tid, worker=0, *, stale_after: float | None = STALE_AFTER_S,
              heartbeat: float = HEARTBEAT_S):
    """Claim trial ``tid``: a ``Claim`` if this process now owns it, else None."""
    d = _sweep_dir(sweep_dir)
    path = _claim_path(d, tid)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = _claim_info(worker)
    if _create_claim(path, info):
        return Claim(path, info, heartbeat)
    if claim_state(path, stale_after) != "stale":
        return None
    with _lock(d / "claims" / ".lock"):
        # re-check under the lock: someone may have taken it over already
        if claim_state(path, stale_after) == "stale":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if _create_claim(path, info):
            return Claim(path, info, heartbeat)
    return None


# ----------------------------------------------------------------------------- training one trial

def _resolve_train_fn(train_fn) -> Callable[[dict], dict]:
    if train_fn is None:
        return default_train
    if callable(train_fn):
        return train_fn
    if isinstance(train_fn, str) and ":" in train_fn:
        mod, _, attr = train_fn.partition(":")
        return getattr(import_module(mod), attr)
    raise ValueError(f"train_fn must be a callable or 'module:function', got {train_fn!r}")


def default_train(config: dict) -> dict:
    """Build a ``rubik.train.TrainConfig`` from the stored dict and run ``rubik.train.train``."""
    from rubik.data import DataConfig
    from rubik.train import TrainConfig, train

    cfg = dict(config)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"sweep template has fields TrainConfig does not know: {unknown}")
    if isinstance(cfg.get("data"), dict):
        cfg["data"] = DataConfig(**cfg["data"])
    # a dict recipe (a Recipe stored by asdict) is resolved by rubik.train itself
    if cfg.get("twist") is not None:
        cfg["twist"] = tuple(cfg["twist"])
    return train(TrainConfig(**cfg))


def _run_trial(d: Path, spec: dict, trial: dict, train_fn, *, worker, threads, device) -> dict:
    tid = trial["id"]
    cfg = trial_config(spec, trial, d)
    if threads is not None:
        cfg["threads"] = int(threads)
    if device is not None:
        cfg["device"] = device
    record = {"id": tid, "status": None, "sample": trial, "config": cfg, "metrics": None,
              "seed": cfg.get("seed"), "code_version": code_version(), "host": socket.gethostname(),
              "pid": os.getpid(), "worker": worker, "started": _now()}
    t0 = time.time()
    try:
        metrics = train_fn(copy.deepcopy(cfg))
        if not isinstance(metrics, dict):
            raise TypeError(f"train function returned {type(metrics).__name__}, expected a dict of metrics")
        record.update(status="done", metrics=metrics)
    except Exception as exc:  # a failed trial is a result too; KeyboardInterrupt/SystemExit propagate
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                      setup_error=_is_setup_error(exc))
    record.update(finished=_now(), time_s=round(time.time() - t0, 3))
    atomic_write_json(_record_path(d, tid), record)
    return record


def _is_setup_error(exc) -> bool:
    """A failure of the set-up rather than of the trial (the data not found or unreadable): such a
    trial is retried by the next run, once the set-up is fixed."""
    from rubik.data import DataError

    return isinstance(exc, DataError)


def _settled(rec, retry_failed: bool) -> bool:
    """Whether a trial's record ends it: done, or failed on the trial itself (trained again only
    with ``retry_failed``). A trial that failed on a set-up error is trained again by every run."""
    if rec is None:
        return False
    if rec.get("status") == "done":
        return True
    return not (retry_failed or rec.get("setup_error"))


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
               on_start: Callable | None = None) -> list:
    """Train unclaimed, unfinished trials one after another in this process; return their ids.

    ``worker``/``workers`` choose this worker's share (visited first); ``threads`` sets torch's
    intra-op threads and the trial's ``TrainConfig.threads``; ``device`` overrides the template's;
    ``train_fn`` (callable or ``"module:function"``, taking the config dict and returning a metrics
    dict) replaces ``rubik.train.train``; ``max_trials`` stops after that many trials;
    ``on_start(trial_id)`` / ``on_trial(record)`` are called around each trial.
    """
    if workers < 1 or not 0 <= worker < workers:
        raise ValueError(f"worker index must satisfy 0 <= worker < workers, got worker={worker}, workers={workers}")
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    fn = _resolve_train_fn(train_fn)
    _pop_torchrun_env()  # each trial trains alone, never as one rank of a DDP job
    if threads is not None:
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(int(threads))
    trials = {str(t["id"]): t for t in spec["trials"]}
    order = _worker_order(list(trials), worker, workers, steal)
    done_here, attempted = [], set()
    while True:
        claimed_any = False
        for tid in order:
            if max_trials is not None and len(done_here) >= max_trials:
                return done_here
            if tid in attempted:  # at most one attempt per trial per run (failed ones too)
                continue
            if _settled(_read_record(d, tid), retry_failed):
                continue
            claim = try_claim(d, tid, worker, stale_after=stale_after, heartbeat=heartbeat)
            if claim is None:
                continue
            with claim:
                claimed_any = True
                if _settled(_read_record(d, tid), retry_failed):  # finished by someone between check and claim?
                    continue
                attempted.add(tid)
                if on_start is not None:
                    on_start(tid)
                rec = _run_trial(d, spec, trials[tid], fn, worker=worker, threads=threads, device=device)
                done_here.append(tid)
            if on_trial is not None:
                on_trial(rec)
        if not claimed_any:
            return done_here


def _worker_main(sweep_dir, kwargs, env):
    """Entry point of a spawned local worker process."""
    os.environ.update(env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run `finally`s: release the claim
    run_worker(sweep_dir, **kwargs)


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


def _auto_devices(spec, processes):
    """One CUDA device per local worker when the template trains on a GPU and several exist."""
    dev = str(spec["template"].get("device", "auto"))
    if processes <= 1 or not (dev == "auto" or dev.startswith("cuda")):
        return None
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:  # pragma: no cover
        return None
    return [f"cuda:{i % n}" for i in range(processes)] if n > 0 else None


def run_sweep(sweep_dir, *, worker: int = 0, workers: int = 1, processes: int = 1, threads: int | None = None,
              progress: bool = True, devices=None, train_fn=None, steal: bool = True,
              retry_failed: bool = False, stale_after: float | None = STALE_AFTER_S,
              heartbeat: float = HEARTBEAT_S, poll: float = 2.0):
    """Run this machine's part of a sweep: ``processes`` local workers, then return ``load_results``.

    Local process ``k`` is global worker ``worker * processes + k`` of ``workers * processes``.
    ``devices``: one device string per local process (default: ``cuda:k`` when the template's device
    is auto/cuda and GPUs exist, else the template's). On CPU with several processes, ``threads``
    defaults to ``cpu_count // processes``. ``progress`` shows a tqdm bar (trials done
    across all workers / total, running, failed, ETA).
    """
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if workers < 1 or not 0 <= worker < workers:
        raise ValueError(f"worker index must satisfy 0 <= worker < workers, got worker={worker}, workers={workers}")
    if isinstance(devices, str):
        devices = [x for x in devices.split(",") if x]
    if devices is None:
        devices = _auto_devices(spec, processes)
    if threads is None and processes > 1 and not devices:  # CPU: share the cores, don't oversubscribe
        threads = max(1, (os.cpu_count() or 1) // processes)
    common = dict(threads=threads, train_fn=train_fn, steal=steal, retry_failed=retry_failed,
                  stale_after=stale_after, heartbeat=heartbeat)
    bar = _ProgressBar(d, spec, enabled=progress)
    try:
        if processes == 1:
            dev = devices[0] if devices else None
            run_worker(d, worker=worker, workers=workers, device=dev, on_trial=lambda rec: bar.refresh(),
                       on_start=lambda tid: bar.refresh(), **common)
        else:
            import multiprocessing as mp

            if callable(train_fn) and getattr(train_fn, "__module__", None) == "__main__":
                raise ValueError("with processes > 1, pass train_fn as an importable 'module:function'")
            ctx = mp.get_context("spawn")
            procs = []
            for k in range(processes):
                kw = dict(common, worker=worker * processes + k, workers=workers * processes,
                          device=devices[k % len(devices)] if devices else None)
                p = ctx.Process(target=_worker_main, args=(str(d), kw, {}), name=f"rubik-sweep-{k}")
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
            if bad:
                raise RuntimeError(f"sweep worker process(es) exited with {bad}; see their output above")
        bar.refresh()
    finally:
        bar.close()
    return load_results(d)


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
            self.bar = tqdm(total=self.total, initial=st["done"] + st["failed"], desc="sweep", unit="trial",
                            dynamic_ncols=True)
            self._set(st)

    def _set(self, st):
        self.bar.set_postfix(running=st["running"], failed=st["failed"], left=st["left"], refresh=False)

    def refresh(self):
        if self.bar is None:
            return
        st = sweep_status(self.d)
        finished = st["done"] + st["failed"]
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
    """Counts: ``total, done, failed, running, stale, left`` (left = no record and not running)."""
    d = _sweep_dir(sweep_dir)
    spec = spec or load_spec(d)
    ids = [str(t["id"]) for t in spec["trials"]]
    out = dict(total=len(ids), done=0, failed=0, running=0, stale=0, left=0)
    for tid in ids:
        path = _record_path(d, tid)
        if path.exists():
            rec = _read_record(d, tid) or {}
            out["done" if rec.get("status") == "done" else "failed"] += 1
            continue
        state = claim_state(_claim_path(d, tid), stale_after)
        if state == "live":
            out["running"] += 1
        else:
            out["left"] += 1
            out["stale"] += state == "stale"
    return out


def load_results(sweep_dir, *, metrics=METRIC_COLUMNS):
    """One row per trial: the sample columns, ``status`` (done | failed | running | pending), the
    scalar ``metrics`` (NaN until done), ``time_s``, ``code_version``, ``error``.

    Metric names that clash with sample columns (``params``, ``flops``, ``resolution``) are not
    copied; the sample's analytic values are the reference. Filter with ``df[df.status == "done"]``.
    """
    import numpy as np
    import pandas as pd

    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    rows = []
    for t in spec["trials"]:
        row = dict(t)
        tid = str(t["id"])
        rec = _read_record(d, tid)
        if rec is None:
            state = claim_state(_claim_path(d, tid))
            row["status"] = "running" if state == "live" else "pending"
        else:
            row["status"] = rec.get("status", "failed")
            row["time_s"] = rec.get("time_s")
            row["code_version"] = rec.get("code_version")
            row["error"] = rec.get("error")
            m = rec.get("metrics") or {}
            for k in metrics:
                if k not in t:
                    row[k] = m.get(k)
        for k in metrics:
            row.setdefault(k, np.nan)
        rows.append(row)
    df = pd.DataFrame(rows)
    for k in metrics:
        if k in df.columns:
            df[k] = pd.to_numeric(df[k], errors="coerce")
    return df


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
            raise ValueError(f"--ranges: cannot parse {part!r}; expected e.g. r=0.5:1.4,d=0.3:1.6") from None
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

    p = sub.add_parser("run", help="train the sweep's unfinished trials (resumable, parallel-safe)")
    p.add_argument("dir")
    p.add_argument("--worker", type=int, default=None, help="this worker's index (default torchrun/SLURM env, else 0)")
    p.add_argument("--workers", type=int, default=None, help="number of workers across machines")
    p.add_argument("--processes", type=int, default=1, help="local worker processes (GPUs: one per device)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (CPU)")
    p.add_argument("--devices", default=None, help="comma list, one per local process (default cuda:k if GPUs)")
    p.add_argument("--no-steal", action="store_true", help="train only this worker's share")
    p.add_argument("--retry-failed", action="store_true", help="train trials whose record says failed again")
    p.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                   help="seconds without heartbeat after which another host's claim is stale")
    p.add_argument("--train-fn", default=None, help="module:function replacing rubik.train.train (testing)")
    p.add_argument("--no-progress", action="store_true")

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
            raise ValueError(f"-p {item!r}: expected KEY=VALUE")
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
            raise ValueError(f"-p {key}: unknown field {field!r}; expected one of {sorted(target)} "
                             f"(data.KEY for DataConfig, recipe.KEY for the recipe)")
        target[field] = _parse_value(value)
    num_classes = args.num_classes or (_count_classes(args.data) if args.data else None) or 1000
    kw = dict(mode=args.mode, ranges=_parse_ranges(args.ranges), base_resolution=args.base_resolution,
              num_classes=num_classes, include_references=not args.no_references, seed=args.sample_seed)
    if args.c_min is not None:
        kw["c_min"] = args.c_min
    samples = sample_twists(args.n, args.base, **kw)
    meta = {"sampling": dict(kw, n=args.n, base=args.base), "command": " ".join(sys.argv)}
    path = init_sweep(args.dir, samples, tmpl, meta=meta, trial_checkpoints=args.trial_checkpoints, force=args.force)
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
    if devices is None and local_rank is not None and "LOCAL_RANK" in os.environ:
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                devices = f"cuda:{local_rank % torch.cuda.device_count()}"
    _pop_torchrun_env()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # scancel / kill: release the claim first
    df = run_sweep(args.dir, worker=worker, workers=workers, processes=args.processes, threads=args.threads,
                   devices=devices, train_fn=args.train_fn, steal=not args.no_steal,
                   retry_failed=args.retry_failed, stale_after=args.stale_after, progress=not args.no_progress)
    counts = df["status"].value_counts().to_dict()
    print(f"sweep {args.dir}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
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
          f"{st['left']} left" + (f" ({st['stale']} with stale claims)" if st["stale"] else ""))
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
    failed = df[df.status == "failed"]
    for row in failed.itertuples():
        print(f"failed {row.id}: {row.error}")
    return 0


def main(args) -> int:
    try:
        return {"init": _cmd_init, "run": _cmd_run, "status": _cmd_status}[args.sweep_command](args)
    except ValueError as exc:
        print(f"rubik sweep {args.sweep_command}: error: {exc}", file=sys.stderr)
        return 2
