"""The sweep's job queue: one record and one claim file per trial, shared by any number of workers.

::

    DIR/trials/<id>.json     one record per finished trial, written atomically (tmp file + os.replace)
    DIR/claims/<id>.claim    "a worker is training this trial" (a ``rubik.rundir`` lock file: written
                             complete, then hard-linked into place)

``trial_state`` is the one reading of a trial that ``rubik.sweep.sweep_status``,
``rubik.sweep.load_results`` and the workers (``rubik.launcher.run_worker``) share. A record's
status is ``done``, ``failed`` (the trainer raised; retried only with ``--retry-failed``) or
``diverged`` (a non-finite loss: a result, left out of frontiers and fits). An unreadable record is
``corrupt`` and is trained again (the damaged file is kept as ``<id>.json.corrupt``). A record that
does not belong to its trial's spec (``record_mismatch``: its fingerprint, or the identity of the config
it carries, differs from the spec's; ``rubik.identity``) is ``mismatch``: listed, set aside as
``<id>.json.stale`` (never deleted) and trained again. Records written before fingerprints existed are
checked by the config they carry. A record that
cannot be written is kept under ``unsaved_dir()`` and moved in by the next run
(``recover_unsaved``), so no trained result is lost.

Claims make parallel workers safe without a scheduler: a worker trains a trial only after creating
its claim file atomically, re-checks that no record appeared meanwhile, and deletes the claim after
the record is written. A claim is *stale* (and gets taken over) when its process is gone: same host
and the pid is dead or was reused (process start time differs), or, for another host, its file has
not been touched for ``stale_after`` seconds (a heartbeat thread touches live claims every 30 s), or
it cannot be read (claims are complete when they exist, so that is a damaged file).
Stale take-overs happen under an ``fcntl`` lock on ``claims/.lock``, so two workers cannot both
take over one stale claim.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rubik.errors import ConfigError, RunDirError
from rubik.identity import config_fingerprint, identity_diff
from rubik.rundir import HEARTBEAT_S, STALE_AFTER_S, Lock, acquire, atomic_write_json, lock_info, lock_state
from rubik.rundir import jsonable as _jsonable

__all__ = ["RECORD_STATUSES", "CorruptRecord", "Claim", "bad_trial_id", "check_trial_id", "payload_problem",
           "record_path", "read_record_file", "claim_path", "read_record", "trial_state",
           "record_mismatch", "set_aside", "claim_state", "try_claim", "write_record", "recover_unsaved", "unsaved_dir"]


def _read_json(path):
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- records

def bad_trial_id(tid) -> str | None:
    """Why ``tid`` cannot name a trial's files (None if it can): a trial id is a plain file name, so
    its record, claim and run folder stay inside the sweep (``../../x`` in a hand-edited or downloaded
    ``sweep.json`` would write outside it)."""
    s = str(tid)
    if not s or len(s) > 200 or s.startswith(".") or any(c in s for c in "/\\\0") or not s.isprintable():
        return f"trial id {s!r} is not a plain file name"
    return None


def check_trial_id(tid) -> str:
    """``str(tid)``, or a ``ConfigError`` when it is not a plain file name (``bad_trial_id``)."""
    why = bad_trial_id(tid)
    if why:
        raise ConfigError(why)
    return str(tid)


def record_path(d: Path, tid) -> Path:
    return d / "trials" / f"{check_trial_id(tid)}.json"


def claim_path(d: Path, tid) -> Path:
    return d / "claims" / f"{check_trial_id(tid)}.claim"


#: record statuses: the trainer finished (done), raised (failed; retried with --retry-failed) or
#: stopped on a non-finite loss (diverged: a result, kept out of frontiers and fits)
RECORD_STATUSES = ("done", "failed", "diverged")


def read_record(d: Path, tid):
    """The trial's record, or None if it has none. Records are written atomically, so an
    unreadable one was damaged afterwards: ``CorruptRecord`` (a ValueError) says how."""
    return read_record_file(record_path(d, tid))


def read_record_file(path: Path):
    """``read_record`` of the record file ``path`` (``tools/sync_study.sh`` checks a copy with it)."""
    try:
        rec = _read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CorruptRecord(f"{path}: unreadable record ({type(e).__name__}: {e})") from None
    if not isinstance(rec, dict) or rec.get("status") not in RECORD_STATUSES:
        raise CorruptRecord(f"{path}: not a trial record (status {rec.get('status') if isinstance(rec, dict) else rec!r})")
    why = payload_problem(rec)
    if why:
        raise CorruptRecord(f"{path}: {why}")
    return rec


#: per-image outcomes (``rubik.heldout.pack_correct``) in a record's metrics, and the top-1 each gives
_PER_IMAGE = {"val_correct": "top1", "ema_val_correct": "ema_top1"}


def payload_problem(record: dict) -> str | None:
    """Why a record's metrics do not hold together (None if they do): its per-image outcomes must
    decode to exactly ``n`` hits (bits cut short are a damaged file, not a result) and give the top-1
    the record states. The fingerprint says whose trial a record is; this says its numbers are one
    evaluation's."""
    import base64
    import math

    from rubik.heldout import unpack_correct

    m = record.get("metrics")
    if not isinstance(m, dict):
        return None
    for key, top in _PER_IMAGE.items():
        packed = m.get(key)
        if not packed:
            continue
        try:
            correct, _ = unpack_correct(packed)
            if len(base64.b64decode(packed["bits"])) != (int(packed["n"]) + 7) // 8:
                raise ValueError(f"{len(base64.b64decode(packed['bits']))} bytes of bits for {packed['n']} images")
        except (KeyError, TypeError, ValueError) as e:
            return f"damaged per-image outcomes {key} ({type(e).__name__}: {e})"
        stated = m.get(top)
        if isinstance(stated, (int, float)) and math.isfinite(stated) and len(correct) \
                and abs(100.0 * correct.mean() - stated) > 0.051:   # exact in records; 0.05: one decimal
            return f"{top} {stated} is not what its per-image outcomes {key} give ({100.0 * correct.mean():.4f})"
    return None


class CorruptRecord(ValueError):
    """A trial record that exists but cannot be read as one."""


def record_mismatch(record: dict, expected_config: dict) -> str | None:
    """Why ``record`` is not a result of the trial whose TrainConfig dict is ``expected_config`` (the
    spec's ``rubik.sweep.trial_config``), or None if it is.

    Checked twice, so that neither an edited config nor a record copied from another sweep passes:
    the identity (``rubik.identity.config_identity``: Arch, epochs, seed, data, recipe) of the config
    the record carries must be the spec's, and so must its stored ``fingerprint`` where it has one
    (records written before fingerprints existed are checked by their config alone). A record without
    a config cannot be checked and is accepted."""
    want = config_fingerprint(expected_config)
    cfg = record.get("config")
    if isinstance(cfg, dict) and config_fingerprint(cfg) != want:
        return f"its config is another trial's ({identity_diff(cfg, expected_config)})"
    stored = record.get("fingerprint")
    if stored is not None and stored != want:
        return f"its fingerprint {stored} is not the spec's {want} (a record of another sweep's trial, or edited)"
    return None


def trial_state(d: Path, tid, stale_after: float | None = STALE_AFTER_S, *,
                expect: dict | None = None) -> tuple[str, dict | None, str | None]:
    """``(status, record, note)`` of one trial: the one reading that ``sweep_status``,
    ``load_results`` and the workers share. ``status``: done | failed | diverged (its record),
    corrupt (an unreadable record; ``note`` says why; the next run trains it again), mismatch (with
    ``expect``, the trial's TrainConfig dict from its spec: a record of another design, see
    ``record_mismatch``; ``note`` says how it differs; the next run sets it aside and trains the trial),
    running (a live claim), pending (no record; ``note`` is ``"stale"`` when a dead worker's claim is left)."""
    try:
        rec = read_record(d, tid)
    except CorruptRecord as e:
        return "corrupt", None, str(e)
    if rec is not None:
        why = record_mismatch(rec, expect) if expect is not None else None
        if why is not None:
            return "mismatch", rec, f"{record_path(d, tid)}: {why}"
        return rec["status"], rec, rec.get("error")
    state = claim_state(claim_path(d, tid), stale_after)
    if state == "live":
        return "running", None, None
    return "pending", None, "stale" if state == "stale" else None


def set_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` to ``<path>.<suffix>`` (``.<suffix>.1``, ``.2``, ... if taken): kept, never
    overwritten or deleted. Returns the new path."""
    path = Path(path)
    target, n = path.with_name(f"{path.name}.{suffix}"), 0
    while True:
        try:
            os.link(path, target)   # fails if target exists: nothing set aside earlier is overwritten
            os.unlink(path)
            return target
        except FileExistsError:
            n += 1
            target = path.with_name(f"{path.name}.{suffix}.{n}")
        except OSError:   # a file system without hard links
            if target.exists():
                n += 1
                target = path.with_name(f"{path.name}.{suffix}.{n}")
                continue
            os.replace(path, target)
            return target


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
    path = claim_path(Path(sweep_dir).expanduser(), tid)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return acquire(path, _claim_info(worker), stale_after=stale_after, heartbeat=heartbeat)
    except OSError as e:
        raise RunDirError(f"cannot claim trial {tid} in {path.parent}: {e.strerror} "
                          "(the sweep directory must be writable)") from e


# ----------------------------------------------------------------------------- records that cannot be written

#: waits (s) between attempts to write a record before it is saved elsewhere (tests set them to 0)
RECORD_RETRY_S = (1.0, 5.0, 20.0)


def unsaved_dir() -> Path:
    """Where records that could not be written into their sweep are kept until the next run."""
    return Path(os.environ.get("RUBIK_CACHE_DIR") or Path.home() / ".cache" / "rubik") / "unsaved"


def _unsaved_folders() -> list:
    """Where ``write_record`` keeps a record, in order: the user's cache, then a per-user folder in the
    temp folder (``rubik-unsaved-<uid>``: a shared temp folder is anyone's to write, and a record
    planted there must not be moved into a sweep)."""
    import tempfile

    return [unsaved_dir(), Path(tempfile.gettempdir()) / f"rubik-unsaved-{os.getuid()}"]


def _private_folder(folder: Path, create: bool = False) -> bool:
    """Whether ``folder`` is a directory (not a link) that this user owns and only this user can
    write; ``create``: make it (mode 0700) first when it does not exist."""
    import stat

    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return False
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _unsaved_path(folder: Path, d: Path, tid) -> Path:
    import hashlib

    key = hashlib.sha1(str(d.resolve()).encode()).hexdigest()[:12]
    return folder / f"{key}-{tid}.json"


def write_record(d: Path, tid, record: dict) -> None:
    """Write the record, retrying a few times (a disk that is full for a moment); if it still
    fails, keep the trained result in the cache (or the temp folder) so no training is lost:
    the next ``rubik.launcher.run_worker`` on this sweep moves it in (``recover_unsaved``)."""
    path = record_path(d, tid)
    for wait in (*RECORD_RETRY_S, None):
        try:
            atomic_write_json(path, record)
            return
        except OSError as e:
            err = e
            if wait is not None:
                time.sleep(wait)
    for folder in _unsaved_folders():
        keep = _unsaved_path(folder, d, tid)
        if not _private_folder(folder, create=True):
            continue
        try:
            atomic_write_json(keep, {"sweep_dir": str(d.resolve()), "trial": tid, "record": record})
        except OSError:
            continue
        raise RunDirError(f"cannot write {path}: {err.strerror}; the result of trial {tid} is kept in {keep} "
                          f"and moved in by the next `rubik sweep run {d}` once the folder is writable")
    print(_jsonable(record), file=sys.stderr)   # nowhere left to write it: the log keeps it
    raise RunDirError(f"cannot write {path}: {err.strerror}; the result of trial {tid} could not be saved "
                      "anywhere else either and is printed above")


def recover_unsaved(d: Path, expect=None) -> list:
    """Move records kept by ``write_record`` back into the sweep; returns their trial ids.

    A kept record is taken only from a folder that this user alone can write, and only when it is a
    record of one of this sweep's trials (``expect(tid)``: the trial's TrainConfig dict from its spec,
    None for an id the spec does not have), with a plain id, the trial's fingerprint and config
    (``record_mismatch``) and metrics that hold together (``payload_problem``). Any other is set
    aside as ``<file>.rejected`` (kept, never moved in) and named on standard error."""
    moved = []
    for folder in _unsaved_folders():
        if not folder.is_dir():
            continue
        if not _private_folder(folder):
            print(f"rubik sweep: not reading kept records in {folder}: others can write it (it must be this "
                  "user's, mode 0700)", file=sys.stderr)
            continue
        for keep in sorted(folder.glob(_unsaved_path(folder, d, "*").name)):
            try:
                kept = _read_json(keep)
            except (OSError, ValueError):
                continue
            if not isinstance(kept, dict) or kept.get("sweep_dir") != str(d.resolve()):
                continue
            tid, rec = kept.get("trial"), kept.get("record")
            why = bad_trial_id(tid)
            if why is None and not (isinstance(rec, dict) and rec.get("status") in RECORD_STATUSES):
                why = "not a trial record"
            if why is None and str(rec.get("id", tid)) != str(tid):
                why = f"a record of trial {rec.get('id')!r}, kept as {tid!r}"
            want = expect(str(tid)) if why is None and expect is not None else None
            if why is None and expect is not None and want is None:
                why = f"this sweep has no trial {tid!r}"
            if why is None and want is not None:
                why = record_mismatch(rec, want) or (None if rec.get("fingerprint") else "it has no fingerprint")
            why = why or payload_problem(rec)
            if why:
                print(f"rubik sweep: not moving {keep} into {d}: {why}; set aside as "
                      f"{set_aside(keep, 'rejected').name}", file=sys.stderr)
                continue
            try:
                done = read_record(d, tid)
            except CorruptRecord:
                done = None
            if done is None:
                atomic_write_json(record_path(d, tid), rec)
                print(f"rubik sweep: moved the record of trial {tid} kept in {keep} into {d}", file=sys.stderr)
                moved.append(tid)
            keep.unlink()
    return moved
