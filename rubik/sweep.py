"""The study: train many randomly twisted models with one recipe, resumably and in parallel.

This module holds the sweep's spec (``init_sweep``, ``trial_config``, ``order_trials``) and reads
its results (``sweep_status``, ``load_results``); the per-trial record and claim files are
``rubik.jobqueue``, the workers and local processes that train the trials ``rubik.launcher``
(``run_sweep`` and ``run_worker``), the ``rubik sweep`` command line
``rubik.sweep_cli``.

A sweep is a directory::

    DIR/sweep.json           the spec: sampled trials (one row of ``sample_twists`` each) + TrainConfig template
    DIR/trials/<id>.json     one record per finished trial, written atomically (tmp file + os.replace)
    DIR/claims/<id>.claim    "a worker is training this trial" (a ``rubik.rundir`` lock file: written
                             complete, then hard-linked into place; see ``rubik.jobqueue``)
    DIR/runs/<id>/           the trial's run folder (``rubik.train``'s files): ``model.pt``, the final
                             weights of a finished trial (``rubik.runstate.keep_weights``; read by
                             ``rubik validate --checkpoint``), and with ``trial_checkpoints`` the
                             per-epoch ``checkpoint.pt`` (then a killed trial resumes from its last
                             epoch instead of restarting; without it the checkpoint is deleted once
                             the trial is done and a killed trial restarts)

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
under ``rubik.jobqueue.unsaved_dir()`` and moved in by the next run, so no trained result is lost. An unreadable
record is ``corrupt`` for ``sweep_status`` and ``load_results`` alike (``trial_state``) and is
trained again (the damaged file is kept as ``<id>.json.corrupt``).

Every record carries its trial's ``fingerprint`` (``rubik.identity.config_fingerprint``: Arch, epochs,
seed, data, recipe). A record that does not match its trial in ``sweep.json`` (a sweep re-initialised
with another design over old records, a record copied from another sweep or edited) is ``mismatch``,
never ``done``: ``sweep status`` lists it, ``load_results`` gives it no metrics, and the next run sets it
aside as ``<id>.json.stale`` and trains the trial. Records written before fingerprints existed are
checked by the config they carry. ``init_sweep`` refuses a folder that holds records without a spec
unless ``force``.

Claims make parallel workers safe without a scheduler (``rubik.jobqueue`` says how, and when a
claim is stale and taken over). Local worker processes die with their parent (``rubik.launcher``).
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

    from rubik.sweep import sample_twists, init_sweep, load_results
    from rubik.launcher import run_sweep
    samples = sample_twists(100, "efficientnet_b0", base_resolution=64, num_classes=10, mode="stratified")
    init_sweep("runs/sweep", samples, TrainConfig(data=DataConfig(root=...), recipe={"name": "proxy", "epochs": 30}))
    results = run_sweep("runs/sweep", processes=2, threads=1)      # == load_results("runs/sweep")

``load_results(DIR)`` gives one row per trial (sample columns, ``status``, metrics), ready for
``rubik.frontier.pareto_frontier`` and ``rubik.formula.TinyFormula``.

Tested: two concurrent workers and two local processes train every trial exactly once; a worker
killed with SIGKILL mid-trial leaves a stale claim that the next run takes over (only that
trial is trained again); SIGTERM (``scancel``, ``kill``) releases the claims on the way out.
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

import rubik
from rubik.config import TrainConfig, upgrade_config, validate
from rubik.errors import ConfigError, RunDirError
from rubik.models import Arch
from rubik.jobqueue import bad_trial_id, read_record, trial_state  # noqa: F401  (read_record: re-exported)
from rubik.rundir import STALE_AFTER_S, atomic_write_json, utc_now
from rubik.recipes import resolve_recipe
from rubik.rundir import jsonable as _jsonable
from rubik.sampling import sample_twists  # re-exported: rubik.sweep.sample_twists

__all__ = ["sample_twists", "init_sweep", "load_results", "load_correct", "load_spec", "read_record", "sweep_status",
           "trial_config", "trial_arch", "trial_epochs", "template_config", "trial_state_in", "check_template",
           "order_trials", "remaining_work", "times_per_epoch"]

SPEC_FILE = "sweep.json"
SPEC_VERSION = 1
#: scalar metrics copied from a record into ``load_results`` (the rest stays in the JSON)
METRIC_COLUMNS = ("top1", "top5", "ema_top1", "ema_top5", "best_top1", "epochs", "train_time_s", "images_per_s",
                  "latency_ms")
#: TrainConfig fields a trial row may set for itself (integers), over the template's
TRIAL_FIELDS = ("epochs", "seed")


_CODE_VERSION = None


def code_version() -> str:
    """``$RUBIK_CODE_VERSION`` if set (a copy of the code without its git history, e.g. on a rented
    GPU machine: set it to the commit the copy was made from), else ``git describe --always --dirty
    --tags`` of the rubik checkout, else ``rubik-<version>``."""
    global _CODE_VERSION
    if os.environ.get("RUBIK_CODE_VERSION"):
        return os.environ["RUBIK_CODE_VERSION"]
    if _CODE_VERSION is None:
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
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable sweep spec ({type(e).__name__}: {e}); restore it, or re-create it "
                          "with `rubik sweep init` (the trial records are kept and checked against it)") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("trials"), list) or "template" not in spec:
        raise ConfigError(f"{path}: not a sweep spec (no trials and template)")
    if spec.get("version") != SPEC_VERSION:
        raise ConfigError(f"{path}: unsupported sweep spec version {spec.get('version')!r}")
    for t in spec["trials"]:   # a hand-edited or downloaded spec: no id may name a file outside the sweep
        why = bad_trial_id(t.get("id")) if isinstance(t, dict) else f"trial {t!r} is not a row"
        if why:
            raise ConfigError(f"{path}: {why}; restore the spec, or re-create it with `rubik sweep init`")
    return spec


def _template_dict(template) -> dict:
    """A sweep template as stored: a TrainConfig's ``to_dict()``; a dict (either layout, see
    ``rubik.config.upgrade_config``) is stored as given, so specs made before ``arch`` stay byte-identical."""
    if template is None:
        template = TrainConfig()
    if isinstance(template, TrainConfig):
        return template.to_dict()
    if not isinstance(template, dict):
        raise ConfigError(f"template must be a TrainConfig or a dict, got {type(template).__name__}")
    return _jsonable(template)


def template_config(template: dict) -> TrainConfig:
    """The TrainConfig of a stored template or trial config (either layout); ConfigError naming the
    problem (fields TrainConfig does not know, a bad model, recipe or data field)."""
    try:
        return TrainConfig.from_dict(template)
    except ConfigError as e:
        raise ConfigError(f"sweep template: {e}") from None
    except TypeError as e:
        raise ConfigError(f"sweep template: {e}") from None


def check_template(template: dict) -> None:
    """ConfigError, before any trial runs, when a sweep's TrainConfig template cannot train: fields
    TrainConfig does not know, and every setting ``rubik.config.validate`` checks without data (epochs,
    batch size, threads, the recipe's fields, the data subsample)."""
    cfg = template_config(template)
    cfg.device = "auto"   # checked where the trials run (`sweep run --device`), not where the sweep is made
    validate(cfg, model_given=True)


def init_sweep(sweep_dir, samples, template=None, *, meta: dict | None = None,
               trial_checkpoints: bool = False, force: bool = False, latency=True) -> Path:
    """Create ``sweep_dir/sweep.json`` from a ``sample_twists`` table and a TrainConfig template.

    Every trial trains ``template`` with its sample row's ``arch`` (``rubik.models.Arch.to_dict()``:
    base, twist, base resolution, rules; checked here) as ``model``; rows without one (hand-made
    tables, older specs) train ``model=base``, ``twist=(r, d, w)`` and ``base_resolution`` from
    the row (see ``trial_config``). Re-initialising an existing sweep is allowed only if
    the trials and template are identical (a no-op), or with ``force=True`` when no trial has a
    record yet; a folder that holds trial records but no ``sweep.json`` is refused unless ``force``
    (records that do not match the new spec are then set aside and retrained by the next run, never
    counted). ``latency``: measure each trial's latency after training (True, or a dict
    overriding ``rubik.latency.TRIAL_LATENCY``); False turns it off.
    """

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
    bad = [i for i in samples["id"] if bad_trial_id(i)]
    if bad:
        raise ConfigError(f"init_sweep: trial ids must be plain file names, got {bad}")
    for tid, arch in zip(samples["id"], samples["arch"] if "arch" in samples.columns else []):
        if isinstance(arch, dict):
            try:
                trial_arch({"arch": arch})
            except (ValueError, TypeError) as e:
                raise ConfigError(f"init_sweep: trial {tid}: {e}") from None
    check_template(_template_dict(template))
    spec = {
        "version": SPEC_VERSION,
        "created": utc_now(),
        "code_version": code_version(),
        "meta": _jsonable(meta or {}),
        "trial_checkpoints": bool(trial_checkpoints),
        "latency": latency if isinstance(latency, dict) else bool(latency),
        "num_classes": _num_classes(meta, _template_dict(template)),
        "template": _template_dict(template),
        "trials": _jsonable(samples.to_dict(orient="records")),
    }
    path = d / SPEC_FILE
    n_records = len(list((d / "trials").glob("*.json"))) if (d / "trials").is_dir() else 0
    if not path.exists() and n_records and not force:
        raise ConfigError(f"{d} holds {n_records} trial record(s) but no {SPEC_FILE}: they belong to an earlier "
                          "sweep; use another directory, or --force (force=True) to keep them: records that do not "
                          "match the new spec are then set aside as <id>.json.stale and retrained, never counted")
    if path.exists():
        old = load_spec(d)
        same = _same_trials(old["trials"], spec["trials"]) and _same_template(old["template"], spec["template"])
        if same:
            return path
        n_done = n_records
        if not force:
            raise ConfigError(f"{path} exists with different trials/template; use another directory "
                             "(or force=True / --force if no trial has run)")
        if n_done:
            raise ConfigError(f"{path}: refusing to overwrite a sweep with {n_done} finished trial(s)")
    for sub in ("trials", "claims"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, spec)
    return path


def _num_classes(meta: dict | None, template: dict) -> int | None:
    """The head size of the sweep's models, written into its spec (so nothing has to solve it back
    from a parameter count): the sampling's ``num_classes``, else the class folders of the template's
    data where they exist here, else None (specs made before this key have none either)."""
    n = ((meta or {}).get("sampling") or {}).get("num_classes")
    if n:
        return int(n)
    data = upgrade_config(template).get("data") or {}
    root = data.get("root") if isinstance(data, dict) else None
    if root and (Path(root).expanduser() / "train").is_dir():
        from rubik.data import count_classes   # torch: only when a sweep is made over real data

        try:
            return int(count_classes(root, data.get("manifest"), quiet=True))
        except (OSError, ValueError, RuntimeError):
            return None
    return None


def _same_template(old: dict, new: dict) -> bool:
    """The same template, whichever layout each was stored in (a spec made before ``arch`` and the
    recipe's schedule is the same as today's spelling of it, so re-running its command is a no-op)."""
    if old == new:
        return True
    try:
        return TrainConfig.from_dict(old).to_dict() == TrainConfig.from_dict(new).to_dict()
    except (ValueError, TypeError):
        return False


def _same_trials(old: list, new: list) -> bool:
    """The same trials; a spec written before sample rows carried their ``arch`` is the same as
    today's rows without it (so re-running a finished study's command stays a no-op)."""
    if old == new:
        return True
    if any("arch" in t for t in old):
        return False
    return old == [{k: v for k, v in t.items() if k != "arch"} for t in new]


def trial_arch(trial: dict) -> Arch:
    """The :class:`rubik.models.Arch` a trial row trains: its ``arch``, or (rows without one)
    ``base``, ``r, d, w`` and ``base_resolution`` with the family's default rules."""
    if isinstance(trial.get("arch"), dict):
        return Arch.from_dict(trial["arch"])
    br = trial.get("base_resolution")
    br = None if br is None or (isinstance(br, float) and math.isnan(br)) else int(br)
    return Arch(trial["base"], (float(trial["r"]), float(trial["d"]), float(trial["w"])), br)


def trial_config(spec: dict, trial: dict, sweep_dir=None) -> dict:
    """The stored TrainConfig (a dict, ``rubik.config``'s layout) of one trial: the template with this
    trial's model as ``arch``, and its own ``epochs`` (a recipe field) and training ``seed`` where the
    trial row has them (a study that trains schedules and seeds in one sweep); rows without them (or
    NaN) keep the template's.

    ``arch`` is the row's ``arch`` dict, so the trained model is the sample's by construction; rows
    without one (specs written before samples carried it, hand-made rows) give the Arch of ``base``,
    ``r, d, w`` and the row's ``base_resolution`` (``trial_arch``). A template stored in the layout
    before ``arch`` is converted here (``upgrade_config``); the identity of its trials is unchanged."""
    cfg = upgrade_config(copy.deepcopy(spec["template"]))
    if isinstance(trial.get("arch"), dict):
        cfg["arch"] = copy.deepcopy(trial["arch"])
    else:
        if trial.get("base_resolution") is None and isinstance(cfg.get("arch"), dict):
            trial = {**trial, "base_resolution": cfg["arch"].get("base_resolution")}
        try:
            cfg["arch"] = trial_arch(trial).to_dict()
        except ValueError:   # a row no model fits: kept as written, so the trainer's error is the trial's record
            cfg.pop("arch", None)
            cfg.update(model=trial["base"], twist=[float(trial[k]) for k in "rdw"],
                       base_resolution=trial.get("base_resolution"))
    for key in TRIAL_FIELDS:
        value = trial.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            if key == "epochs":
                recipe = cfg.get("recipe", "proxy")
                cfg["recipe"] = {**({"name": recipe} if isinstance(recipe, str) else recipe), "epochs": int(value)}
            else:
                cfg[key] = int(value)
    if spec.get("trial_checkpoints") and sweep_dir is not None:
        cfg["out_dir"] = str(_sweep_dir(sweep_dir) / "runs" / str(trial["id"]))
        cfg["resume"] = "auto"   # a killed trial continues from its last epoch
    return cfg


def trial_epochs(config: dict) -> int:
    """The schedule length of a stored trial config (its recipe's epochs)."""
    return resolve_recipe(upgrade_config(config).get("recipe") or "proxy").epochs


ORDERS = ("spec", "short-first", "long-first")


def training_cost(flops, epochs):
    """A trial's training cost for ordering and budgeting: FLOPs per image x epochs (scalars or columns).
    ``rubik sweep run --order`` sorts by it; the study orders its design by it, ``design_cost`` sums it."""
    return flops * epochs


def trial_costs(spec: dict) -> dict:
    """``{trial id: FLOPs x epochs}``, the training cost ``rubik.study.design_cost`` sums: a trial's own
    ``epochs`` where its row has them, else the template's (else its recipe's). A trial without
    ``flops`` costs nothing here (it is ordered first by ``short-first``)."""
    out = {}
    for t in spec["trials"]:
        epochs = trial_epochs(trial_config(spec, t))
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



# ----------------------------------------------------------------------------- results

def trial_state_in(d, spec: dict, trial: dict, stale_after: float | None = STALE_AFTER_S):
    """``rubik.jobqueue.trial_state`` of one trial row of ``spec``, its record checked against the
    row's TrainConfig (a record of another design is ``mismatch``)."""
    return trial_state(_sweep_dir(d), str(trial["id"]), stale_after, expect=trial_config(spec, trial))


def sweep_status(sweep_dir, *, spec=None, stale_after: float | None = STALE_AFTER_S) -> dict:
    """Counts: ``total, done, failed, diverged, corrupt, mismatch, running, stale, left`` (left = no
    record and not running; stale = left with a dead worker's claim; mismatch = a record of another
    design, see ``rubik.jobqueue.record_mismatch``) from ``trial_state``."""
    d = _sweep_dir(sweep_dir)
    spec = spec or load_spec(d)
    out = dict(total=len(spec["trials"]), done=0, failed=0, diverged=0, corrupt=0, mismatch=0, running=0, stale=0,
               left=0)
    for t in spec["trials"]:
        status, _, note = trial_state_in(d, spec, t, stale_after)
        out["left" if status == "pending" else status] += 1
        out["stale"] += note == "stale"
    return out


def load_results(sweep_dir, *, metrics=METRIC_COLUMNS, split_seed: int | None = None):
    """One row per trial: the sample columns, ``status`` (done | failed | diverged | corrupt | mismatch |
    running | pending, see ``trial_state``; a mismatch record's metrics are not read), the scalar ``metrics`` (NaN until done), ``time_s``,
    ``code_version``, ``error``.

    Metric names that clash with sample columns (``params``, ``flops``, ``resolution``) are not
    copied; the sample's analytic values are the reference (the trained model is built from the
    row's Arch, so they agree: tests/test_arch.py checks every committed record). Filter with ``df[df.status == "done"]``
    (frontiers and fits do: a diverged trial's chance-level accuracy is not a result about its dials).

    Records with per-image outcomes (``val_correct``, see ``rubik.data.pack_correct``) are also
    scored on the two halves of ``rubik.data.val_split(labels, split_seed)`` (default
    ``rubik.data.SPLIT_SEED``): columns ``top1_select``, ``top1_test`` (and ``ema_top1_select``,
    ``ema_top1_test`` with EMA); NaN for records without them (older ones).
    """
    from rubik.data import SPLIT_SEED, split_top1   # torch (rubik.data): only when the split columns are asked for

    split_seed = SPLIT_SEED if split_seed is None else split_seed
    halves = {"val_correct": "top1", "ema_val_correct": "ema_top1"}
    d = _sweep_dir(sweep_dir)
    spec = load_spec(d)
    rows = []
    for t in spec["trials"]:
        row = dict(t)
        tid = str(t["id"])
        row["status"], rec, note = trial_state_in(d, spec, t)
        if row["status"] in ("corrupt", "mismatch"):
            row["error"] = note
        if rec is not None and row["status"] != "mismatch":
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
    from rubik.data import unpack_correct   # torch (rubik.data): only for per-image tests

    d = _sweep_dir(sweep_dir)
    out = {}
    spec = load_spec(d)
    for t in spec["trials"]:
        status, rec, _ = trial_state_in(d, spec, t)
        m = (rec or {}).get("metrics") or {}
        if status == "done" and m.get(key):
            out[str(t["id"])] = unpack_correct(m[key])
    return out


def times_per_epoch(results) -> bool:
    """Whether ``remaining_work`` fits time per epoch: every trial of ``results`` has a positive
    ``epochs`` (a study's schedules); otherwise it fits whole-trial time."""
    return "epochs" in results and bool(pd.to_numeric(results["epochs"], errors="coerce").gt(0).all())


def remaining_work(results) -> float:
    """Worker-seconds the unfinished trials of ``load_results`` will take, from the finished ones.

    Trial time is fitted as ``a + b * flops`` (a straight line: a per-step floor plus compute)
    on the finished trials, when there are at least 3 with different FLOPs; otherwise every trial
    is assumed to take the mean time. Each prediction is kept within the observed times. Where the
    trials differ in length (an ``epochs`` column, as in a study's schedules), the line is fitted to
    the time per epoch and each prediction multiplied by its trial's epochs: an 80-epoch trial
    takes twice a 40-epoch one of the same model.
    """

    d = results[results["status"] == "done"].dropna(subset=["time_s"])
    todo = results[results["status"] != "done"]
    if not len(d) or not len(todo):
        return 0.0
    per_epoch = times_per_epoch(results)
    scale_done = d["epochs"].to_numpy(float) if per_epoch else np.ones(len(d))
    scale_todo = todo["epochs"].to_numpy(float) if per_epoch else np.ones(len(todo))
    t = d["time_s"].to_numpy(float) / scale_done
    if "flops" in d and d["flops"].nunique() >= 3 and todo["flops"].notna().all():
        b, a = np.polyfit(d["flops"].to_numpy(float), t, 1)
        pred = np.clip(a + b * todo["flops"].to_numpy(float), t.min(), t.max())
    else:
        pred = np.full(len(todo), t.mean())
    return float((pred * scale_todo).sum())


# ----------------------------------------------------------------------------- finished trials and their training curves

def finished(results, sweep_dir=None):
    """The trials of ``load_results`` that finished; a RunDirError (a RuntimeError; with the first
    error, and ``sweep_dir`` if given) if none did."""
    done = results[results["status"] == "done"]
    if not len(done):
        failed = results[results["status"] == "failed"]
        err = failed["error"].iloc[0] if len(failed) and "error" in failed else "no trial has run yet"
        where = f"{sweep_dir}: " if sweep_dir is not None else ""
        raise RunDirError(f"{where}no finished trial among {len(results)} ({err}); see the sweep's trials/*.json")
    return done.copy()


def sweep_histories(sweep_dir):
    """Per-epoch metrics of every trial record that matches the sweep's spec: ``id, epoch, top1, ...``
    (long format)."""

    d = _sweep_dir(sweep_dir)
    spec = load_spec(d) if (d / SPEC_FILE).is_file() else None
    rows = []
    for p in sorted((d / "trials").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if spec is not None:
            trial = next((t for t in spec["trials"] if str(t["id"]) == p.stem), None)
            if trial is None or trial_state_in(d, spec, trial)[0] == "mismatch":
                continue
        for i, h in enumerate((rec.get("metrics") or {}).get("history") or []):
            rows.append({"run": rec.get("id", p.stem), "epoch": h.get("epoch", i + 1),
                         **{k: v for k, v in h.items() if k != "epoch" and isinstance(v, (int, float))}})
    return pd.DataFrame(rows)
