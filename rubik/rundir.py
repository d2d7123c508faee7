"""Files that runs and sweeps leave on disk, written so that a kill, a full disk or a second
writer never leaves a half-written file or silently takes over someone else's.

* :func:`atomic_write` (and ``_json`` / ``_torch`` variants): a temp file in the same folder, fsync,
  ``os.replace``. The temp file is created with mode ``0o666`` minus the umask (``mkstemp``'s 0600
  would hide records from the rest of a shared group) and named after its writer's host and pid,
  so :func:`clean_stale_tmp` can remove the ones a SIGKILL left behind without touching a live
  writer's. An ``OSError`` names the destination (``runs/x/checkpoint.pt: No space left on device``),
  not the temp file.
* Strict JSON (:func:`jsonable`, :func:`dumps`): NaN and infinities become ``null`` (Python's
  ``NaN`` tokens are not JSON, and strict parsers reject the whole file).
* Lock files (:func:`acquire`, :func:`lock_state`, :class:`Lock`): an exclusive file holding host,
  pid, pid start time and a token. It is written to a temp file first and then hard-linked into
  place, so it is complete the moment it exists; a file that is empty or unreadable anyway is stale
  at once. A lock is stale when its process is gone (same host: the pid is dead or was reused) or,
  for another host, when nobody touched it for ``stale_after`` seconds (a heartbeat thread touches
  held locks). Taking over a stale lock happens under an ``fcntl`` lock, so two processes cannot
  both take over one. The sweep's trial claims and ``rubik train``'s run-directory lock are such
  files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable

HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
TMP_MAX_AGE_S = 3600.0   # a temp file this old is an orphan even if its writer's pid looks alive (reuse)


def utc_now() -> str:
    """Now, UTC, to the second (ISO 8601): the time stamps of records, claims and specs."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- strict JSON

def jsonable(obj):
    """``obj`` in JSON types: dataclasses, numpy / torch scalars and arrays, tuples, paths; NaN and
    infinities become None (strict JSON has no such numbers)."""
    if hasattr(obj, "to_dict") and not isinstance(obj, type):   # its own stored form (TrainConfig, Arch)
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return str(obj)


def dumps(obj, **kw) -> str:
    """``json.dumps`` of :func:`jsonable` ``(obj)``; never writes ``NaN`` / ``Infinity``."""
    return json.dumps(jsonable(obj), allow_nan=False, **kw)


# ----------------------------------------------------------------------------- atomic writes

_HOST = socket.gethostname()


def _tmp_path(path: Path) -> Path:
    return path.parent / f".{path.name}~{_HOST}~{os.getpid()}~{time.time_ns() % 10**9}.tmp"


def _write(f, data) -> None:
    """The one place file contents are written (tests patch it to simulate a full disk)."""
    f.write(data)


def atomic_write(path, write_fn: Callable, *, binary: bool = True) -> None:
    """Call ``write_fn(f)`` on a new temp file next to ``path``, fsync it, then ``os.replace`` it to
    ``path``: readers see the old file or the new one, never a part. On failure the temp file is
    removed; an ``OSError`` is re-raised naming ``path``."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # 0o666 minus the umask
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: _write(f, data))


def atomic_write_json(path, obj, indent: int | None = 1) -> None:
    """``obj`` as strict JSON (:func:`dumps`) plus a newline, atomically."""
    text = dumps(obj, indent=indent) + "\n"
    atomic_write(path, lambda f: _write(f, text), binary=False)


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through :func:`atomic_write`. A full disk is a plain ``OSError`` naming ``path``:
    torch's writer turns the file's ``OSError`` into ``RuntimeError: [enforce fail at inline_container.cc]
    ... unexpected pos``, so the writer keeps the first ``OSError`` and it is raised instead."""
    import torch

    class _Writer:   # torch.save's file-like target; every write goes through _write
        def __init__(self, f):
            self.f = f
            self.error = None

        def write(self, b):
            try:
                _write(self.f, b)
            except OSError as e:
                self.error = self.error or e
                raise
            return len(b)

        def flush(self):
            try:
                self.f.flush()
            except OSError as e:
                self.error = self.error or e
                raise

    def save(f):
        w = _Writer(f)
        try:
            torch.save(obj, w)
        except RuntimeError as e:
            if w.error is not None:
                raise w.error from None
            if "unexpected pos" in str(e):   # a write that failed without telling us why
                try:
                    st = os.fstatvfs(f.fileno())
                    full = st.f_bavail * st.f_frsize < 1 << 20
                except OSError:
                    full = False
                if full:
                    raise OSError(28, os.strerror(28)) from None   # ENOSPC
            raise

    atomic_write(path, save)


CONVERT_HINT = "rubik checkpoint convert --trust"


def load_torch_file(path):
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, plain containers, numbers and strings
    only, so no file runs code when it is read (a pickle can name any callable; a crafted
    ``checkpoint.pt`` passed around would run it). A file that names other objects (a checkpoint
    written before rubik stored its RNG states as tensors, or a crafted one) is an ``UnsafeFileError``
    saying how to convert it if it is trusted; any other failure is torch's own exception."""
    import pickle

    import torch

    from rubik.errors import UnsafeFileError

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e).upper():   # garbage, not objects: torch's reason, without its advice
            why = str(e).split("error:")[-1].split("Check the documentation")[0]
            raise pickle.UnpicklingError(" ".join(why.split()) or "not a torch file") from None
        raise UnsafeFileError(f"{path} holds Python objects other than tensors and plain values (a checkpoint "
                              "written before rubik stored them safely, or a crafted file), which rubik does not "
                              f"run; if you trust the file, convert it once: {CONVERT_HINT} {path}") from None


def append_line(path, obj) -> None:
    """Append ``obj`` as one strict-JSON line (metrics.jsonl)."""
    line = dumps(obj) + "\n"
    try:
        with open(path, "a") as f:
            _write(f, line)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e


def clean_stale_tmp(folder, max_age: float = TMP_MAX_AGE_S) -> list[Path]:
    """Remove temp files (``*.tmp``) in ``folder`` whose writer is gone: written by a dead process
    of this host, or older than ``max_age`` seconds. Returns the removed paths."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.glob("*.tmp"):
        parts = p.name.rsplit("~", 3)
        dead = False
        if len(parts) == 4 and parts[1] == _HOST and parts[2].isdigit():
            dead = not pid_alive(int(parts[2]))
        try:
            old = now - p.stat().st_mtime > max_age
        except FileNotFoundError:
            continue
        if dead or old:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


# ----------------------------------------------------------------------------- processes

def pid_start(pid: int):
    """Process start time (clock ticks since boot) from /proc, or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int, start=None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is not None:
        now = pid_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True


# ----------------------------------------------------------------------------- lock files

def lock_info(**extra) -> dict:
    """What a lock file holds: host, pid, pid start time, time, a unique token, and ``extra``."""
    pid = os.getpid()
    return {"host": _HOST, "pid": pid, "pid_start": pid_start(pid), "time": utc_now(),
            "token": f"{_HOST}:{pid}:{time.time_ns()}", **extra}


def read_lock(path) -> dict | None:
    """The lock's info, or None if there is no lock or it is unreadable."""
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def create_lock(path, info: dict) -> bool:
    """Create the lock file ``path`` holding ``info`` if it does not exist; True if created.

    Written complete to a temp file, then hard-linked into place (atomic, fails if ``path``
    exists): a lock is never seen empty or half-written."""
    path = Path(path)
    tmp = _tmp_path(path)
    atomic_write_json(tmp, info, indent=None)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as e:   # a file system without hard links: exclusive create, then write
        if e.errno not in (1, 95, 38):   # EPERM, EOPNOTSUPP, ENOSYS
            raise OSError(e.errno, e.strerror, str(path)) from e
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(dumps(info))
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


#: ``{path: (mtime, monotonic time this process first saw that mtime)}``: another host's lock is judged
#: by this machine's own clock, so a skewed clock (a future mtime) cannot keep a dead lock live for ever
_SEEN: dict = {}


def lock_state(path, stale_after: float | None = STALE_AFTER_S) -> str:
    """``"free"`` (no lock file), ``"live"`` or ``"stale"``.

    Another host's lock is stale when its file has not been touched for ``stale_after`` seconds: by its
    mtime against this clock, or, whatever the clocks say (a holder whose clock runs ahead writes mtimes
    in the future), when this process has seen the same mtime for ``stale_after`` seconds of its own
    monotonic clock. So the wait for a dead holder is bounded by ``stale_after`` either way."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return "free"
    info = read_lock(path)
    if info is None:
        return "stale" if path.exists() else "free"   # locks are written complete: unreadable = dead
    if info.get("host") == _HOST and isinstance(info.get("pid"), int):
        return "live" if pid_alive(info["pid"], info.get("pid_start")) else "stale"
    if stale_after is None:
        return "live"
    if time.time() - mtime > stale_after:
        return "stale"
    key, now = str(path), time.monotonic()
    seen = _SEEN.get(key)
    if seen is None or seen[0] != mtime:
        _SEEN[key] = (mtime, now)
        return "live"
    return "stale" if now - seen[1] > stale_after else "live"


def describe_lock(path) -> str:
    """Who holds the lock file ``path`` and since when, in words (and a clock warning when its file's
    time is ahead of this machine's)."""
    path = Path(path)
    info = read_lock(path) or {}
    text = f"pid {info.get('pid')} on {info.get('host')} since {info.get('time')}"
    try:
        ahead = path.stat().st_mtime - time.time()
    except FileNotFoundError:
        return text + " (released)"
    if ahead > 60:
        text += (f"; its file was touched {ahead:.0f} s in this machine's future: the clocks of "
                 f"{info.get('host')} and {_HOST} disagree")
    return text


def break_stale(path, stale_after: float | None = STALE_AFTER_S) -> bool:
    """Remove the lock file ``path`` if it is stale (checked again under ``.lock``); True if removed."""
    path = Path(path)
    if lock_state(path, stale_after) != "stale":
        return False
    with _flock(path.parent / ".lock"):
        if lock_state(path, stale_after) == "stale":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                return True
    return False


@contextlib.contextmanager
def _flock(path: Path):
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Lock:
    """A held lock file, touched every ``heartbeat`` seconds by a daemon thread until released."""

    def __init__(self, path: Path, info: dict, heartbeat: float = HEARTBEAT_S):
        self.path = Path(path)
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
        """Delete the lock file if it is still ours (someone may have taken over a stale one)."""
        self._stop.set()
        current = read_lock(self.path)
        if current is not None and current.get("token") == self.info["token"]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(path, info: dict | None = None, *, stale_after: float | None = STALE_AFTER_S,
            heartbeat: float = HEARTBEAT_S) -> Lock | None:
    """Take the lock file ``path``: a :class:`Lock` if this process now holds it, else None
    (someone live holds it). A stale lock is taken over under ``.lock`` in the same folder."""
    path = Path(path)
    info = info or lock_info()
    if create_lock(path, info):
        return Lock(path, info, heartbeat)
    if lock_state(path, stale_after) != "stale":
        return None
    with _flock(path.parent / ".lock"):
        # re-check under the lock: someone may have taken it over already
        if lock_state(path, stale_after) == "stale":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if create_lock(path, info):
            return Lock(path, info, heartbeat)
    return None
