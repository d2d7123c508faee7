"""The decoded tensor cache: every image of a split decoded and resized once, kept as a uint8 tensor file.

The tensor pipeline (``rubik.data.tensor_pipeline``) trains from it. ``tensor_cache`` decodes a split
(PIL, a thread pool, a tqdm bar) into a uint8 tensor file in the cache directory (``$RUBIK_CACHE_DIR``
or ``~/.cache/rubik``), written atomically and keyed by dataset / split / subsample / size and a hash
of the file list with sizes and mtimes (so it is rebuilt when the source changes), holding a SHA-256
of its tensors that every load checks (a file damaged in place is rebuilt, not trained on;
``tensor_digest``). Train images are stored at ``floor(size / 0.875)`` px (shorter side resized,
centre square crop) so the crops keep some detail; val images are stored already through the
standard eval transform (resize ``floor(size / 0.875)`` bicubic, centre crop ``size``), so evaluation
is exact. ``rubik data cache`` shows the cache's size (``cache_files``) and prunes files unused for
some days (``prune_cache``). ``open_rgb`` (PIL decoding that names the file it cannot read) is shared
with the folder pipeline and ``rubik data compact``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rubik._progress import tqdm

from rubik.data.augment import CROP_PCT
from rubik.data.locate import DataConfig, DataError, _default_cache_dir, dataset_samples
from rubik.errors import ConfigError
from rubik.rundir import atomic_torch_save, clean_stale_tmp

CACHE_VERSION = 1


# ----------------------------------------------------------------------------- decoding

def open_rgb(path: str, draft_size: int | None = None):
    """PIL RGB image; a DataError naming the file if it cannot be read or decoded."""
    try:
        with Image.open(path) as im:
            if draft_size and im.format == "JPEG":
                im.draft("RGB", (draft_size, draft_size))   # DCT-domain downscale: much faster decode
            return im.convert("RGB")
    except Exception as e:
        raise DataError(f"cannot read image {path!r}: {type(e).__name__}: {e}") from e


def _resize_center(im, resize: int, crop: int):
    w, h = im.size
    s = resize / min(w, h)
    nw, nh = max(crop, round(w * s)), max(crop, round(h * s))
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - crop) // 2, (nh - crop) // 2
    return im.crop((left, top, left + crop, top + crop))


def _decode_task(args):
    path, resize, crop = args
    im = _resize_center(open_rgb(path, draft_size=resize), resize, crop)
    return np.asarray(im, dtype=np.uint8).copy()


def _decode_all(paths: list[str], resize: int, crop: int, workers: int, progress: bool, desc: str) -> torch.Tensor:
    n = len(paths)
    x = torch.empty((n, crop, crop, 3), dtype=torch.uint8)
    tasks = [(p, resize, crop) for p in paths]
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False)
    workers = min(workers, os.cpu_count() or 1, max(1, n // 64))
    if workers > 1:
        # Threads, not processes: PIL releases the GIL while decoding and resizing, and forking a
        # process whose torch/OpenMP threads are running (a sweep worker) can deadlock the child.
        with ThreadPoolExecutor(workers) as pool:
            for i, a in enumerate(pool.map(_decode_task, tasks)):
                x[i] = torch.from_numpy(a)
                bar.update(1)
    else:
        for i, t in enumerate(tasks):
            x[i] = torch.from_numpy(_decode_task(t))
            bar.update(1)
    bar.close()
    return x.permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- the cache files

def tensor_cache(data: DataConfig, split: str, image_size: int, *, progress: bool = True) -> dict:
    """Load (or build once) the uint8 tensor cache of a split; ``{"x": N,3,S,S uint8, "y", "classes", ...}``.

    train: shorter side resized to ``floor(image_size / 0.875)`` (bicubic), centre square crop of that size.
    val: resize ``floor(image_size / 0.875)`` + centre crop ``image_size`` (the eval transform, exactly).
    """
    root, classes, samples = dataset_samples(data, split)
    store = int(image_size / CROP_PCT)
    resize, crop = (store, store) if split == "train" else (store, image_size)
    h = hashlib.sha1()
    per_class = data.train_per_class if split == "train" else data.val_per_class
    # the seed only picks the subsample: a whole split is cached once for every seed
    seed = None if per_class is None else data.seed
    header = {"v": CACHE_VERSION, "name": data.name, "split": split, "resize": resize, "crop": crop,
              "per_class": per_class, "seed": seed, "classes": classes}
    h.update(json.dumps(header, sort_keys=True).encode())
    for rel, label in samples:
        st = os.stat(root / rel)
        h.update(f"{rel}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    pc = header["per_class"]
    subset = "all" if pc is None else f"{pc}pc_s{seed}"
    fname = f"{data.name}_{split}_{subset}_{resize}-{crop}px_{h.hexdigest()[:16]}.pt"
    folder = _default_cache_dir(data)
    path = folder / fname
    clean_stale_tmp(folder)   # temp files of cache writes killed mid-way (SIGKILL, power loss)
    obj = _load_trusted(path, h.hexdigest())
    if obj is not None:
        return obj
    x = _decode_all([str(root / rel) for rel, _ in samples], resize, crop, data.workers, progress,
                    desc=f"caching {data.name}/{split} @{crop}px")
    obj = {"x": x, "y": torch.tensor([lab for _, lab in samples], dtype=torch.int64), "classes": classes,
           "key": h.hexdigest(), "root": str(root), "files": [rel for rel, _ in samples]}
    obj["digest"] = tensor_digest(obj["x"], obj["y"])
    try:
        atomic_torch_save(obj, path)
    except OSError as e:   # a cache is a shortcut: train from memory, say why it is not kept
        warnings.warn(f"cannot write tensor cache {e.filename or path}: {e.strerror}; training without it "
                      "(it is decoded again next time)")
    return obj


def _load_trusted(path: Path, key: str) -> dict | None:
    """The cache file at ``path`` if it exists, has ``key`` and passes its digest (its use is recorded);
    else None, with a warning saying why a file that is there is rebuilt."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged cache is rebuilt, not trusted
        warnings.warn(f"ignoring unreadable tensor cache {path}: {e}; rebuilding it")
        return None
    if obj is None or obj.get("key") != key:
        return None
    why = _cache_damage(obj)
    if why is not None:
        warnings.warn(f"ignoring tensor cache {path}: {why}; rebuilding it")
        return None
    with contextlib.suppress(OSError):
        os.utime(path)   # its last use, for `rubik data cache --prune-days`
    return obj


def cache_files(cache_dir=None) -> list[dict]:
    """The tensor cache files in ``cache_dir`` (default ``$RUBIK_CACHE_DIR`` or ``~/.cache/rubik``), least
    recently used first: ``{"path", "bytes", "last_used"}`` (``last_used``: the file's mtime, which every
    load touches, as a Unix time)."""
    folder = Path(cache_dir).expanduser() if cache_dir else _default_cache_dir(DataConfig())
    out = []
    for p in folder.glob("*.pt") if folder.is_dir() else []:
        with contextlib.suppress(FileNotFoundError):
            st = p.stat()
            out.append({"path": p, "bytes": st.st_size, "last_used": st.st_mtime})
    return sorted(out, key=lambda f: f["last_used"])


def prune_cache(days: float, cache_dir=None) -> list[dict]:
    """Delete the tensor cache files not used for ``days`` days (and temp files of killed writes);
    returns the deleted files (``cache_files`` rows). A deleted file is decoded again when next needed."""
    if not days >= 0:
        raise ConfigError(f"--prune-days must be >= 0, got {days}")
    folder = Path(cache_dir).expanduser() if cache_dir else _default_cache_dir(DataConfig())
    clean_stale_tmp(folder)
    cutoff = time.time() - days * 86400
    gone = []
    for f in cache_files(folder):
        if f["last_used"] < cutoff:
            with contextlib.suppress(FileNotFoundError):
                f["path"].unlink()
                gone.append(f)
    return gone


def tensor_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """SHA-256 of a tensor cache's images and labels (their bytes), stored in the cache file and
    checked on every load: a cache damaged in place (same size, so the file still loads) is rebuilt,
    never trained on. Costs ~1.7 ms per MB (``benchmarks/cache_digest.py``)."""
    h = hashlib.sha256()
    for t in (x, y):
        h.update(memoryview(t.detach().cpu().contiguous().numpy()).cast("B"))
    return h.hexdigest()


def _cache_damage(obj: dict) -> str | None:
    """Why a loaded tensor cache cannot be trusted, or None."""
    if not isinstance(obj.get("x"), torch.Tensor) or not isinstance(obj.get("y"), torch.Tensor):
        return "no image or label tensor"
    if obj.get("digest") is None:
        return "written before caches carried a content digest"
    if len(obj["x"]) != len(obj["y"]) or tensor_digest(obj["x"], obj["y"]) != obj["digest"]:
        return "its content does not match its SHA-256 digest (damaged on disk)"
    return None
