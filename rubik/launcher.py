"""Running a sweep: workers that claim, train and record trials, and the local processes that run them.

``run_worker`` trains unfinished trials one after another in this process (its own share first,
then the rest; claims in ``rubik.jobqueue`` keep that safe). ``run_sweep`` starts ``processes``
local workers (spawned processes that die with their parent: ``PR_SET_PDEATHSIG`` plus a
parent-pid watcher), spreads them over the GPUs (``cuda:k`` round-robin, several per GPU), shows
a progress bar, and returns ``rubik.sweep.load_results`` once every trial has a record (it waits
for trials held elsewhere). Temp files of killed writes are removed when a worker starts.

A setup error (``rubik.errors.UserError``: missing data, bad settings; or an ``OSError``: a full
or read-only disk) is not a trial's result: the worker stops with one line and the trial runs again
once it is fixed. Each record also holds, unless the spec's ``latency`` is off, ``latency_ms``:
the trial's CPU forward time measured after training (``rubik.latency.TRIAL_LATENCY``).

The command line (``rubik sweep run``, ``rubik.sweep_cli``) and the launch recipes (torchrun,
SLURM, several machines) are described in ``rubik.sweep``.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import signal
import socket
import sys
import time
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from rubik.cli import format_error
from rubik.config import TrainConfig
from rubik.errors import ConfigError, UserError
from rubik.identity import config_fingerprint
from rubik.latency import sweep_num_classes, trial_latency, trial_latency_options
from rubik.jobqueue import claim_path, record_path, recover_unsaved, set_aside, try_claim, write_record
from rubik.rundir import (HEARTBEAT_S, STALE_AFTER_S, break_stale, clean_stale_tmp, describe_lock, lock_state, read_lock,
                          utc_now)
from rubik.sweep import code_version, load_results, load_spec, order_trials, sweep_status, trial_config, trial_state_in

__all__ = ["run_sweep", "run_worker", "WorkerOptions", "default_train", "default_processes"]

#: environment variables of torchrun, removed so that each trial trains alone (no DDP inside a sweep)
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_WORLD_SIZE")


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
    """Build a ``rubik.config.TrainConfig`` from the stored dict (either layout) and run ``rubik.train.train``."""
    from rubik.train import train   # torch: loaded by the trainer only (fake trainers and status need none)

    try:
        cfg = TrainConfig.from_dict(config)
    except ConfigError as e:
        raise ConfigError(f"sweep template: {e}") from None
    return train(cfg)


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

    record = {"id": tid, "status": None, "sample": trial, "config": cfg, "fingerprint": config_fingerprint(cfg),
              "metrics": None,
              "seed": cfg.get("seed"), "code_version": code_version(), "host": socket.gethostname(),
              "device_name": _device_name(cfg.get("device")), "pid": os.getpid(), "worker": worker,
              "started": utc_now()}
    t0 = time.time()
    # every trial trains in its run folder, which keeps its final weights (keep_weights: runs/<id>/model.pt);
    # without trial_checkpoints a killed trial restarts (overwrite), and the record's config is unchanged
    run_cfg = copy.deepcopy(cfg)
    if not run_cfg.get("out_dir"):
        run_cfg.update(out_dir=str(d / "runs" / str(tid)), resume=False, overwrite=True)
    try:
        metrics = train_fn(run_cfg)
        if not isinstance(metrics, dict):
            raise TypeError(f"train function returned {type(metrics).__name__}, expected a dict of metrics")
        diverged = metrics.get("status") == "diverged"
        record.update(status="diverged" if diverged else "done", metrics=metrics)
        if not diverged:
            try:
                _keep_weights(run_cfg["out_dir"], drop_checkpoint=not cfg.get("out_dir"))
            except OSError as exc:   # a full disk: the trained result is still recorded
                metrics["weights_error"] = f"{type(exc).__name__}: {exc}"
        try:   # cheap, after training; a failure here does not fail the trial
            opts = trial_latency_options(spec.get("latency", True))
            if opts is not None and not diverged:
                metrics.update(trial_latency(cfg, sweep_num_classes(spec), opts))
        except Exception as exc:
            metrics["latency_error"] = f"{type(exc).__name__}: {exc}"
    except (UserError, OSError):
        raise   # the setup is wrong (data, disk, settings): stop; unrecorded, the trial runs again once fixed
    except Exception as exc:  # a failed trial is a result too; KeyboardInterrupt/SystemExit propagate
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record.update(finished=utc_now(), time_s=round(time.time() - t0, 3))
    write_record(d, tid, record)
    return record




def _keep_weights(out, *, drop_checkpoint: bool) -> None:
    """``rubik.runstate.keep_weights`` when the trainer left a checkpoint (fake trainers leave none)."""
    if (Path(out) / "checkpoint.pt").is_file():
        from rubik.runstate import keep_weights   # torch: only where a real trainer ran

        keep_weights(out, drop_checkpoint=drop_checkpoint)


# ----------------------------------------------------------------------------- one worker: claim, train, record

def _worker_order(ids, worker, workers, steal):
    own = ids[worker::workers]
    if not steal:
        return own
    own_set = set(own)
    # others in an order rotated by worker, so helpers don't all pile onto the same trial
    rest = [t for t in ids if t not in own_set]
    k = (worker * len(rest)) // max(workers, 1) if rest else 0
    return own + rest[k:] + rest[:k]


def pop_torchrun_env():
    for k in _TORCHRUN_ENV:
        os.environ.pop(k, None)


@dataclasses.dataclass(frozen=True)
class WorkerOptions:
    """How a worker trains its trials: the one value ``run_sweep`` hands every worker it starts.

    ``threads`` sets torch's intra-op threads and the trial's ``TrainConfig.threads``; ``device``
    overrides the template's; ``train_fn`` (callable or ``"module:function"``, taking the config dict
    and returning a metrics dict) replaces ``rubik.train.train``; ``steal``: take other workers'
    unclaimed trials after this worker's share; ``retry_failed``: train failed trials again;
    ``stale_after`` / ``heartbeat``: claim timing (``rubik.rundir``); ``order`` (``order_trials``:
    ``spec``, ``short-first``, ``long-first``) is the order the shares are cut from.
    """
    threads: int | None = None
    device: str | None = None
    train_fn: Any = None
    steal: bool = True
    retry_failed: bool = False
    stale_after: float | None = STALE_AFTER_S
    heartbeat: float = HEARTBEAT_S
    order: str = "spec"


def run_worker(sweep_dir, options: WorkerOptions | None = None, *, worker: int = 0, workers: int = 1,
               max_trials: int | None = None, on_trial: Callable | None = None, on_start: Callable | None = None,
               **option_fields) -> list:
    """Train unclaimed, unfinished trials one after another in this process; return their ids.

    ``worker``/``workers`` choose this worker's share (visited first); ``options`` how it trains
    (:class:`WorkerOptions`; its fields may also be given as keywords, which win); ``max_trials``
    stops after that many trials; ``on_start(trial_id)`` / ``on_trial(record)`` are called around each
    trial.
    """
    try:
        o = dataclasses.replace(options or WorkerOptions(), **option_fields)
    except TypeError as e:
        raise ConfigError(f"run_worker: {e}") from None
    threads, device, stale_after, retry_failed = o.threads, o.device, o.stale_after, o.retry_failed
    if workers < 1 or not 0 <= worker < workers:
        raise ConfigError(f"worker index must satisfy 0 <= worker < workers, got worker={worker}, workers={workers}")
    d = Path(sweep_dir).expanduser()
    spec = load_spec(d)
    fn = _resolve_train_fn(o.train_fn)
    pop_torchrun_env()  # each trial trains alone, never as one rank of a DDP job
    if threads is not None:
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(int(threads))
    for sub in ("trials", "claims"):   # temp files of writers killed mid-write
        clean_stale_tmp(d / sub)
    trials = {str(t["id"]): t for t in spec["trials"]}
    recover_unsaved(d, lambda tid: trial_config(spec, trials[tid]) if tid in trials else None)
    order = _worker_order(order_trials(spec, o.order), worker, workers, o.steal)

    def wanted(tid):
        status, _, _ = trial_state_in(d, spec, trials[tid], stale_after)
        return status in ("pending", "corrupt", "mismatch") or (status == "failed" and retry_failed)

    done_here, attempted = [], set()
    while True:
        claimed_any = False
        for tid in order:
            if max_trials is not None and len(done_here) >= max_trials:
                return done_here
            if tid in attempted or not wanted(tid):  # at most one attempt per trial per run (failed ones too)
                continue
            held = claim_path(d, tid)
            before = (read_lock(held) or {}).get("token"), describe_lock(held) if held.exists() else None
            claim = try_claim(d, tid, worker, stale_after=stale_after, heartbeat=o.heartbeat)
            if claim is None:
                continue
            if before[0] is not None and before[0] != claim.info["token"]:
                print(f"rubik sweep: took over trial {tid} from {before[1]} (its claim went stale)", file=sys.stderr,
                      flush=True)
            with claim:
                claimed_any = True
                # finished by someone between check and claim?
                status, _, note = trial_state_in(d, spec, trials[tid], stale_after)
                if status not in ("pending", "running", "corrupt", "mismatch") and \
                        not (status == "failed" and retry_failed):
                    continue
                if status in ("corrupt", "mismatch"):   # kept for inspection (never deleted); the trial is retrained
                    kept = set_aside(record_path(d, tid), "corrupt" if status == "corrupt" else "stale")
                    if status == "mismatch":
                        print(f"rubik sweep: {note}; set aside as {kept.name}, training trial {tid}", file=sys.stderr)
                attempted.add(tid)
                if on_start is not None:
                    on_start(tid)
                rec = _run_trial(d, spec, trials[tid], fn, worker=worker, threads=threads, device=device)
                done_here.append(tid)
            if on_trial is not None:
                on_trial(rec)
        if not claimed_any:
            return done_here



# ----------------------------------------------------------------------------- local worker processes

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
        print(format_error("sweep run", e), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:   # Ctrl-C reaches the whole process group: the parent says what was kept
        sys.exit(130)


def env_worker():
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


def default_processes(device) -> int:
    """``run_sweep``'s ``processes=None``: one worker per GPU present when the trials train on
    ``cuda``/``auto`` (8 GPUs: 8 trials at once), else 1."""
    return max(1, _cuda_count()) if str(device or "auto") in ("auto", "cuda") else 1


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


def run_sweep(sweep_dir, *, worker: int = 0, workers: int = 1, processes: int | None = 1, threads: int | None = None,
              progress: bool = True, devices=None, train_fn=None, steal: bool = True,
              retry_failed: bool = False, stale_after: float | None = STALE_AFTER_S,
              heartbeat: float = HEARTBEAT_S, poll: float = 2.0, device: str | None = None, wait: bool = True,
              order: str = "spec"):
    """Run this machine's part of a sweep: ``processes`` local workers, then return ``load_results``.

    With ``wait`` (default) it returns only when every trial has a record: trials that other
    processes are training are waited for, and taken over if those processes die. Without it,
    it returns once this machine has nothing left to claim (check ``status`` in the result).
    ``processes`` None: one per GPU present when the device is ``cuda``/``auto``, else 1.

    Local process ``k`` is global worker ``worker * processes + k`` of ``workers * processes``.
    ``devices``: one device string per local process (default from ``device``, else the template's
    device: with ``cuda``/``auto`` and GPUs present, ``cuda:k`` round-robin over the GPUs, several
    processes per GPU when ``processes`` exceeds their number; see ``_auto_devices``). ``threads``
    defaults to ``cpu_count // processes`` on CPU and to 1-2 per GPU worker. ``progress`` shows a
    tqdm bar (trials done across all workers / total, running, failed, ETA). ``order``: which trials
    are taken first (``order_trials``; ``short-first`` for a run against a deadline).
    """
    d = Path(sweep_dir).expanduser()
    spec = load_spec(d)
    order_trials(spec, order)   # an unknown order (or a cost that cannot be worked out) fails here, once
    if processes is None:
        processes = default_processes(device or spec["template"].get("device", "auto"))
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
    options = WorkerOptions(threads=threads, train_fn=train_fn, steal=steal, retry_failed=retry_failed,
                            stale_after=stale_after, heartbeat=heartbeat, order=order)
    bar = _ProgressBar(d, spec, enabled=progress)
    shown = set()
    try:
        while True:
            _run_local_workers(d, worker, workers, processes, devices, options, bar, poll)
            bar.refresh()
            st = sweep_status(d, spec=spec, stale_after=stale_after)
            # done only when every trial has a record: trials claimed elsewhere are waited for (and
            # taken over if their worker dies); unclaimed ones get another pass (our share only
            # without steal: the others are other workers' to train)
            if not wait or not (st["running"] or (st["left"] + st["corrupt"] + st["mismatch"] and steal)):
                break
            _wait_for_claims_elsewhere(d, stale_after, shown)
            time.sleep(poll)
    finally:
        bar.close()
    return load_results(d)


def _wait_for_claims_elsewhere(d: Path, stale_after, shown: set) -> None:
    """Between passes (this machine's workers have returned): say once which trials other processes
    hold, by whom and since when; remove the claims that went stale meanwhile, so the next pass takes
    them over (judged by this machine's clock: see ``rubik.rundir.lock_state``)."""
    limit = "never (no --stale-after)" if stale_after is None else f"if its claim is not touched for {stale_after:.0f} s"
    for path in sorted((d / "claims").glob("*.claim")):
        state = lock_state(path, stale_after)
        if state == "stale":
            if break_stale(path, stale_after):
                print(f"rubik sweep: the claim on trial {path.stem} went stale (untouched for {stale_after} s by "
                      "this machine's clock); taking it over", file=sys.stderr, flush=True)
            continue
        info = read_lock(path) or {}
        if state == "live" and info.get("token") not in shown:
            shown.add(info.get("token"))
            print(f"rubik sweep: waiting for trial {path.stem}, claimed by {describe_lock(path)}; taken over {limit} "
                  "(--stale-after)", file=sys.stderr, flush=True)


def _run_local_workers(d, worker, workers, processes, devices, options: WorkerOptions, bar, poll):
    if processes == 1:
        dev = devices[0] if devices else None
        run_worker(d, dataclasses.replace(options, device=dev), worker=worker, workers=workers,
                   on_trial=lambda rec: bar.refresh(), on_start=lambda tid: bar.refresh())
        return
    import multiprocessing as mp

    train_fn = options.train_fn
    if callable(train_fn) and getattr(train_fn, "__module__", None) == "__main__":
        raise ConfigError("with processes > 1, pass train_fn as an importable 'module:function'")
    ctx = mp.get_context("spawn")
    procs = []
    for k in range(processes):
        kw = dict(options=dataclasses.replace(options, device=devices[k % len(devices)] if devices else None),
                  worker=worker * processes + k, workers=workers * processes)
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
    if -signal.SIGKILL in bad:   # the kernel's out-of-memory killer sends SIGKILL, and says so only in its log
        raise UserError(f"{bad.count(-signal.SIGKILL)} sweep worker process(es) killed by signal 9 (out of memory?); "
                        "their trials are unfinished and run again on the next `rubik sweep run`. Each worker "
                        "holds one trial's model and batches: rerun with fewer --processes, or init a new "
                        "sweep with a smaller --batch-size")
    if 130 in bad:
        raise KeyboardInterrupt
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
            from rubik._progress import tqdm

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
