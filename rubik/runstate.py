"""A run directory's state: opening it (lock, resume or overwrite), the checkpoint a run writes each
epoch and reads back on ``--resume``, and the RNG states that make a resumed run continue exactly.

``open_run_dir`` decides how ``rubik.train`` uses ``out_dir``; ``training_state`` /
``load_training_state`` are one state dict for checkpoint and resume; ``run_signature`` is what must
match for a checkpoint to be continued (the training's identity, ``rubik.identity``, and its task).
The atomic writes and locks underneath are ``rubik.rundir``'s.
"""
from __future__ import annotations

import dataclasses
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from rubik.config import TrainConfig
from rubik.errors import ConfigError, RunDirError, UserError
from rubik.identity import config_identity
from rubik.rundir import (acquire, atomic_torch_save, clean_stale_tmp, jsonable, load_torch_file, lock_info,
                          read_lock)

__all__ = ["RUN_FILES", "open_run_dir", "training_state", "load_training_state", "load_run_checkpoint",
           "run_signature", "seed_everything", "rng_state", "set_rng_state", "convert_checkpoint",
           "kept_after_interrupt", "WEIGHTS_FILE", "keep_weights"]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "task":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_signature(config) -> dict:
    """What must match for ``resume`` to continue a run (a TrainConfig or its stored dict, in either
    layout; flat dict out): the training's identity (``rubik.identity.config_identity``: the Arch,
    seed, data subset, effective epochs and batch size and every recipe field but its name) and,
    where set, the task (only then: runs from before tasks existed keep their signature)."""
    ident = config_identity(config)
    if isinstance(ident.get("recipe"), dict):   # its schedule is in the identity's own epochs / batch_size
        for key in ("name", "epochs", "batch_size"):
            ident["recipe"].pop(key, None)
    sig = _flat(ident)
    task = config.task if isinstance(config, TrainConfig) else config.get("task")
    if task is not None:
        sig["task"] = task
    return jsonable(sig)


def seed_everything(seed: int):
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def rng_state() -> dict:
    """This process's RNG states, as tensors and plain values (a checkpoint loads with
    ``weights_only=True``): numpy's ``(name, keys, pos, has_gauss, gauss)`` keeps its keys as an int64
    tensor, not an ndarray (which only a full unpickler reads back)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: a finished sweep trial's weights (``keep_weights``), in its run folder beside the run files
WEIGHTS_FILE = "model.pt"
RUN_FILES = ("checkpoint.pt", "metrics.jsonl", "result.json", "config.json", WEIGHTS_FILE)


def _holds_run(out: Path) -> str | None:
    """What in ``out`` shows a run that has done work (None if nothing: a run killed in its first
    epoch lost nothing)."""
    if (out / "result.json").is_file():
        return "a finished run (result.json)"
    if (out / "checkpoint.pt").is_file():
        return "a run with a checkpoint"
    m = out / "metrics.jsonl"
    if m.is_file() and m.stat().st_size:
        return "a run's metrics.jsonl"
    return None


def open_run_dir(cfg: TrainConfig, out: Path):
    """Lock ``out`` for this run and decide how to use it: ``(lock, checkpoint or None)``.

    Refuses (RunDirError) a folder that another live process is training into, or that holds a
    run unless ``resume`` (continue it) or ``overwrite`` (delete it) is given; ``resume=True``
    without a checkpoint, a checkpoint that cannot be read, and a checkpoint made with other
    settings (``run_signature``) are errors too. Orphan temp files of killed writes are removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock = acquire(out / "run.lock", lock_info(out_dir=str(out)))
    if lock is None:
        who = read_lock(out / "run.lock") or {}
        raise RunDirError(f"{out} is in use by another training (pid {who.get('pid')} on {who.get('host')}, "
                          f"since {who.get('time')}); wait for it, or give another --out")
    try:
        clean_stale_tmp(out)
        ckpt_path = out / "checkpoint.pt"
        if cfg.overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            return lock, None
        if cfg.resume is True and not ckpt_path.is_file():
            raise RunDirError(f"--resume: no checkpoint.pt in {out}, nothing to resume (start without --resume)")
        if cfg.resume and ckpt_path.is_file():
            return lock, load_run_checkpoint(ckpt_path, cfg)
        held = _holds_run(out)
        if held and not cfg.resume:
            raise RunDirError(f"{out} holds {held}; pass --resume to continue it or --overwrite to replace it")
        for name in RUN_FILES:   # resume="auto" without a checkpoint: start clean
            (out / name).unlink(missing_ok=True)
        return lock, None
    except BaseException:
        lock.release()
        raise


_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "rng", "epoch", "history", "best_top1", "train_time_s")


def training_state(model, ema, optimizer, schedule, *, rngs, epoch, history, best_top1, train_time, cfg, recipe,
                   data=None) -> dict:
    """The checkpoint of a run after ``epoch`` epochs: the weights (raw and EMA), the optimizer and
    schedule, every rank's RNG state, the history, the settings and ``data`` (``rubik.data.data_fingerprint``:
    the class list and the files, checked on resume); ``load_training_state`` reads it."""
    return {"model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "rng": rngs, "epoch": epoch, "history": history, "best_top1": best_top1,
            "train_time_s": train_time, "config": cfg.to_dict(), "recipe": dataclasses.asdict(recipe),
            "data": data}


def load_training_state(ck: dict, model, ema, optimizer, schedule, *, rank: int = 0, path=None) -> tuple:
    """Put a ``training_state`` checkpoint back into the run's objects and this rank's RNGs; returns
    ``(epoch, history, best_top1, train_time_s)``. A checkpoint of another model is a ``RunDirError``."""
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        schedule.load_state_dict(ck["scheduler"])
        if ema is not None and ck.get("ema") is not None:
            ema.load_state_dict(ck["ema"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunDirError(f"{path} does not fit this model ({' '.join(str(e).split())[:300]}); "
                          "--overwrite starts the run over") from None
    rngs = ck["rng"] if isinstance(ck["rng"], list) else [ck["rng"]]
    set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
    return ck["epoch"], ck["history"], ck["best_top1"], ck["train_time_s"]


def load_run_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    """A ``train`` checkpoint on the CPU, checked: readable, complete, made with the same settings."""
    try:
        ck = load_torch_file(path)
    except UserError:   # objects that would run code: refused in one line, with how to convert a trusted file
        raise
    except Exception as e:
        raise RunDirError(f"cannot read checkpoint {path}: {type(e).__name__}: {e} (damaged? --overwrite "
                          "starts the run over)") from None
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise RunDirError(f"{path} is not a rubik.train checkpoint (no {', '.join(missing)}); --overwrite "
                          "starts the run over")
    if isinstance(ck.get("config"), dict):
        before, now = run_signature(ck["config"]), run_signature(cfg.to_dict())
        diff = [f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in now if before.get(k) != now.get(k)]
        if diff:
            raise RunDirError(f"--resume: {path.parent} was trained with other settings ({'; '.join(diff)}); "
                              "resume with the same settings, or --overwrite to start over")
    return ck


def _plain(obj):
    """``obj`` with numpy values as tensors and numbers (what ``weights_only=True`` reads back)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.astype(np.int64) if obj.dtype == np.uint32 else obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if type(obj) in (dict, OrderedDict):
        return type(obj)((k, _plain(v)) for k, v in obj.items())
    if type(obj) in (list, tuple):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _numpy_array_globals() -> list:
    """What pickling an ndarray names: the array and dtype classes and numpy's reconstructor (its
    module moved to ``numpy._core`` in numpy 2), and the dtype classes of numpy >= 1.25."""
    core = getattr(np, "_core", None) or np.core
    out = [np.ndarray, np.dtype, core.multiarray._reconstruct]
    out += [type(np.dtype(t)) for t in ("uint32", "int64", "float64") if type(np.dtype(t)) is not np.dtype]
    return out


def convert_checkpoint(path, *, trust: bool = False) -> Path:
    """Rewrite a checkpoint written before rubik stored its RNG states as tensors (numpy's state was an
    ndarray) so that it loads with ``weights_only=True``. The old file is read with ``weights_only=True``
    plus numpy's array globals only, so nothing else in it can run; ``trust`` must still say the file
    is yours, since its weights and state are taken as they are. The file is replaced
    atomically; one that still holds other objects afterwards is refused, and left as it was."""
    path = Path(path).expanduser()
    if not trust:
        raise ConfigError(f"converting {path} takes its weights and training state as they are: pass --trust "
                          "if you know where it came from")
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    try:
        load_torch_file(path)
        return path   # already in the safe format
    except UserError:
        pass
    # The old format differs only by numpy's RNG state (an ndarray): allow exactly the numpy globals
    # that rebuild an array, so even a trusted file is read without the full unpickler.
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            new = _plain(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:   # other objects than arrays: not a checkpoint of an older rubik
        raise ConfigError(f"{path}: holds objects other than tensors and numpy arrays, so it is not a "
                          f"checkpoint of an older rubik and is left as it is ({str(e).splitlines()[0]})") from None
    tmp = path.with_name(path.name + ".converted")
    atomic_torch_save(new, tmp)
    try:
        load_torch_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="checkpoint_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("convert", help="rewrite a trusted checkpoint of an older rubik so it loads without pickle")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--trust", action="store_true", help="you trust these files: reading them may run code")


def main(args) -> int:
    for f in args.files:
        print(f"{convert_checkpoint(f, trust=args.trust)}: loads with weights_only=True")
    return 0


def kept_after_interrupt(cfg: TrainConfig) -> str:
    """What a Ctrl-C left in ``--out`` and how to go on (``rubik.cli`` prints it as one line)."""
    if not cfg.out_dir:
        return "nothing was kept (no --out); give --out to keep a checkpoint every epoch"
    out = Path(cfg.out_dir)
    if (out / "result.json").is_file():
        return f"the finished run in {out} is kept"
    try:
        epochs = sum(1 for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip())
    except OSError:
        epochs = 0
    if not (out / "checkpoint.pt").is_file() or not epochs:
        return f"no epoch had finished, nothing was kept in {out}; rerun the same command to start again"
    return (f"{out}/checkpoint.pt keeps epoch {epochs}/{cfg.epochs}; rerun the same command with --resume to "
            "continue from it")


def keep_weights(out, *, drop_checkpoint: bool = False) -> Path | None:
    """Write ``out/model.pt`` from the run's final ``out/checkpoint.pt``: the raw and EMA weights, the
    config, recipe, epoch count and data fingerprint, without the optimizer, schedule and RNG states
    (a third to a half of the checkpoint), so ``rubik validate --checkpoint out/model.pt`` rebuilds and
    scores the model; it loads with ``weights_only=True``. ``drop_checkpoint`` then deletes
    ``checkpoint.pt`` (a sweep trial without ``trial_checkpoints``). None when there is no checkpoint
    (a trainer that wrote none)."""
    out = Path(out)
    ckpt = out / "checkpoint.pt"
    if not ckpt.is_file():
        return None
    ck = load_torch_file(ckpt)
    path = out / WEIGHTS_FILE
    atomic_torch_save({k: ck.get(k) for k in ("model", "ema", "config", "recipe", "epoch", "data")}, path)
    if drop_checkpoint:
        ckpt.unlink()
    return path
