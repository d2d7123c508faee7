"""Data: ImageNet-1k, ImageNet-100 (the paper's subset) and Imagenette, two pipelines.

Every dataset is an ImageFolder layout ``ROOT/{train,val}/<class>/<image>``; the
class list is the sorted folder names of ``train/`` (so labels agree between
splits). ``DataConfig`` picks the dataset and options; ``build_loaders`` returns
``(train_loader, val_loader, num_classes)``. Both loaders yield ``(images, labels)``
batches already on the device (float, normalised, channels_last) and have
``set_epoch(epoch)`` and ``len()``.

Two pipelines (and a third for GPUs):

* ``"tensor"`` (proxy runs at small resolution): every image is decoded and resized
  *once* (a multiprocessing pool, tqdm bar) into a uint8 tensor file in the cache
  directory, written atomically and keyed by dataset / split / subsample / size and a
  hash of the file list with sizes and mtimes (so it is rebuilt when the source
  changes), holding a SHA-256 of its tensors that every load checks (a file damaged in place is
  rebuilt, not trained on; ``tensor_digest``). ``rubik data cache`` shows the cache's size and
  prunes files unused for some days. Training batches are then augmented as tensors: a batched
  random-resized-crop + horizontal flip through one ``affine_grid``/``grid_sample``
  (bilinear), an optional batched colour jitter, normalisation. No PIL in the loop.
  Train images are stored at ``floor(size / 0.875)`` px (shorter side resized,
  centre square crop) so the crops keep some detail; val images are stored already
  through the standard eval transform (resize ``floor(size / 0.875)`` bicubic, centre
  crop ``size``), so evaluation is exact.
* ``"folder"`` (full resolution ImageNet): torchvision transforms + DataLoader
  workers: RandomResizedCrop(0.08-1, bicubic), flip, ColorJitter(0.4), optional
  RandAugment; eval resize ``floor(size / 0.875)`` + centre crop.
* ``"gpu_jpeg"`` (full resolution ImageNet on a GPU): workers read file bytes, nvJPEG decodes each batch
  on the device, crop/flip/jitter/normalise there; the same eval transform (see its section below).

ImageNet-100 (paper): 100 random classes (seeded), 500 random train images per
class, all 50 val images of those classes (5,000). ``build_imagenet100_manifest``
writes the class list and file lists to JSON; nothing is copied.

Errors are loud: a wrong root, a missing split, an empty class folder or an image
that cannot be decoded raises an error naming the folder or file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from rubik.errors import ConfigError, UserError
from rubik.rundir import atomic_torch_save, atomic_write_bytes, clean_stale_tmp  # noqa: F401  (atomic_torch_save: re-exported)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875
DATASETS = ("imagenette", "imagenet", "imagenet100", "folder")
PIPELINES = ("auto", "tensor", "folder", "gpu_jpeg")
CACHE_VERSION = 1


@dataclass
class DataConfig:
    root: str | None = None          # ImageFolder root with train/ and val/; None -> $RUBIK_DATA_DIR
    name: str = "imagenette"         # "imagenette" | "imagenet" | "imagenet100" | "folder"
    train_per_class: int | None = None   # subsample (e.g. 500 as in ImageNet-100)
    val_per_class: int | None = None
    manifest: str | None = None      # ImageNet-100 manifest (json) if name == "imagenet100"
    pipeline: str = "auto"           # "tensor" (cached uint8, batched aug) | "folder" (PIL + DataLoader) | "auto"
    cache_dir: str | None = None     # default $RUBIK_CACHE_DIR or ~/.cache/rubik
    workers: int = 4
    seed: int = 0
    download: bool = False           # imagenette only: fetch torchvision's Imagenette (320px) if no root is found


class DataError(UserError, RuntimeError):
    """A dataset problem (wrong path, empty class, unreadable image); the message names it."""


# ----------------------------------------------------------------------------- locating data

def _default_cache_dir(data: DataConfig) -> Path:
    d = data.cache_dir or os.environ.get("RUBIK_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "rubik")
    return Path(d)


def resolve_root(data: DataConfig) -> Path:
    """The dataset root (a folder with ``train/`` and ``val/``), or a DataError saying what is wrong."""
    if data.name not in DATASETS:
        raise ValueError(f"unknown dataset name {data.name!r}; expected one of {DATASETS}")
    root = data.root or os.environ.get("RUBIK_DATA_DIR")
    if not root:
        if data.name == "imagenette" and data.download:
            return _download_imagenette(_default_cache_dir(data) / "download")
        hint = ""
        if data.name == "imagenette":
            hint = (" For Imagenette you can also pass download=True (CLI: --download) to fetch"
                    " torchvision's Imagenette (needs internet).")
        raise DataError(f"no data root given for dataset {data.name!r}: set DataConfig.root (CLI: --data PATH)"
                        f" or the RUBIK_DATA_DIR environment variable.{hint}")
    root = Path(root).expanduser()
    if not root.is_dir():
        if data.name == "imagenette" and data.download:
            return _download_imagenette(root)
        raise DataError(f"data root {str(root)!r} does not exist or is not a folder"
                        + (" (pass download=True / --download to fetch Imagenette there)" if data.name == "imagenette" else ""))
    # torchvision's Imagenette download nests the folders one level down
    if not (root / "train").is_dir():
        for nested in ("imagenette2-320", "imagenette2-160", "imagenette2"):
            if (root / nested / "train").is_dir():
                root = root / nested
                break
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"data root {str(root)!r} has no {split}/ folder: expected the ImageFolder layout"
                            f" ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG")
    return root


def _download_imagenette(root: Path) -> Path:
    from torchvision.datasets import Imagenette

    root.mkdir(parents=True, exist_ok=True)
    print(f"[rubik.data] downloading Imagenette (320px) with torchvision into {root} ...")
    try:
        for split in ("train", "val"):
            Imagenette(str(root), split=split, size="320px", download=not (root / "imagenette2-320").is_dir())
    except Exception as e:  # offline, blocked, ...
        raise DataError(f"could not download Imagenette into {str(root)!r} ({type(e).__name__}: {e}). "
                        "If you are offline, download https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz"
                        " elsewhere, unpack it and pass its folder as the data root.") from e
    return root / "imagenette2-320"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def list_classes(root: Path) -> list[str]:
    train = Path(root) / "train"
    classes = sorted(e.name for e in os.scandir(train) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{str(train)!r} contains no class folders")
    return classes


def count_classes(data_dir, manifest=None, *, quiet: bool = False) -> int:
    """Number of classes: the ImageNet-100 ``manifest``'s, else the class folders under
    ``data_dir/train`` (1000 if there are none, said in a printed note unless ``quiet``)."""
    if manifest:
        return len(json.loads(Path(manifest).read_text())["classes"])
    try:
        if data_dir:
            return len(list_classes(data_dir))
    except (DataError, OSError):
        pass
    if not quiet:
        print(f"note: no class folders under {str(Path(data_dir) / 'train') if data_dir else 'data_dir (None)'}: "
              "FLOPs and params are counted for a 1000-class head")
    return 1000


def list_split(root: Path, split: str, classes: list[str], check_extra: bool = True) -> list[tuple[str, int]]:
    """``[(relative path, label)]`` for every image of ``split``, sorted; errors on empty / missing classes."""
    out = []
    for label, c in enumerate(classes):
        d = Path(root) / split / c
        if not d.is_dir():
            raise DataError(f"class folder {str(d)!r} is missing (class {c!r} exists in train/)")
        files = sorted(e.name for e in os.scandir(d) if e.is_file() and _is_image(e.name))
        if not files:
            raise DataError(f"class folder {str(d)!r} contains no images ({', '.join(IMG_EXTENSIONS)})")
        out.extend((f"{split}/{c}/{f}", label) for f in files)
    extra = sorted(e.name for e in os.scandir(Path(root) / split)
                   if e.is_dir() and not e.name.startswith(".") and e.name not in set(classes)) if check_extra else []
    if extra:
        raise DataError(f"{str(Path(root) / split)!r} has class folders not in train/: {extra[:5]}")
    return out


def subsample(samples: list[tuple[str, int]], per_class: int | None, seed: int) -> list[tuple[str, int]]:
    """A seeded random ``per_class`` images of every class (all of them if fewer), sorted."""
    if per_class is None:
        return samples
    if per_class <= 0:
        raise ValueError(f"per_class must be positive, got {per_class}")
    by_class: dict[int, list] = {}
    for s in samples:
        by_class.setdefault(s[1], []).append(s)
    out = []
    for label in sorted(by_class):
        items = by_class[label]
        rng = random.Random(f"{seed}-{label}")
        out.extend(items if len(items) <= per_class else sorted(rng.sample(items, per_class)))
    return out


def build_imagenet100_manifest(imagenet_root: str, path: str | None = None, *, num_classes: int = 100,
                               train_per_class: int = 500, seed: int = 0) -> dict:
    """The paper's ImageNet-100 as a deterministic index of an ImageNet folder (nothing is copied).

    ``num_classes`` classes drawn at random (``seed``) from ImageNet's train/ folders,
    ``train_per_class`` random train images of each, and all val images of those classes.
    Written to ``path`` (JSON: classes, train, val as paths relative to the root) if given.
    """
    root = resolve_root(DataConfig(root=imagenet_root, name="imagenet"))
    all_classes = list_classes(root)
    if num_classes > len(all_classes):
        raise DataError(f"{root} has only {len(all_classes)} classes, cannot draw {num_classes}")
    classes = sorted(random.Random(seed).sample(all_classes, num_classes))
    train = subsample(list_split(root, "train", classes, check_extra=False), train_per_class, seed)
    val = list_split(root, "val", classes, check_extra=False)
    manifest = {"name": "imagenet100", "seed": seed, "num_classes": num_classes,
                "train_per_class": train_per_class, "classes": classes,
                "train": [p for p, _ in train], "val": [p for p, _ in val]}
    if path:
        atomic_write_bytes(Path(path), json.dumps(manifest, indent=1).encode())
    return manifest


def dataset_samples(data: DataConfig, split: str) -> tuple[Path, list[str], list[tuple[str, int]]]:
    """``(root, classes, [(relative path, label)])`` for a split, after manifest and subsampling."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = resolve_root(data)
    if data.name == "imagenet100":
        if not data.manifest:
            raise DataError("dataset 'imagenet100' needs DataConfig.manifest (a JSON from build_imagenet100_manifest)")
        if not Path(data.manifest).is_file():
            raise DataError(f"ImageNet-100 manifest {data.manifest!r} not found")
        m = json.loads(Path(data.manifest).read_text())
        classes = list(m["classes"])
        index = {c: i for i, c in enumerate(classes)}
        samples = []
        for p in m[split]:
            c = Path(p).parent.name
            if c not in index:
                raise DataError(f"manifest {data.manifest!r}: {p!r} is not in a manifest class folder")
            samples.append((p, index[c]))
        missing = [p for p, _ in samples[:: max(1, len(samples) // 50)] if not (root / p).is_file()]
        if missing:
            raise DataError(f"manifest {data.manifest!r} does not match root {str(root)!r}: e.g. {missing[0]!r} is missing")
    else:
        classes = list_classes(root)
        samples = list_split(root, split, classes)
    per_class = data.train_per_class if split == "train" else data.val_per_class
    return root, classes, subsample(samples, per_class, data.seed)


def data_fingerprint(data: DataConfig) -> dict:
    """What a run trains and is scored on, to check that a resumed run sees the same data:
    ``{"classes": [...], "train": ..., "val": ..., "n_train", "n_val"}``, the two split digests being
    SHA-1s of every (relative path, label, file size) after subsampling. Sizes, not times, so a copy
    of the same files (``rsync``, ``rubik data compact`` aside) matches; renamed or permuted class
    folders, added or removed images and re-encoded files do not."""
    out = {}
    for split in ("train", "val"):
        root, classes, samples = dataset_samples(data, split)
        h = hashlib.sha1()
        for rel, label in samples:
            h.update(f"{rel}\0{label}\0{os.stat(root / rel).st_size}\n".encode())
        out["classes"], out[split], out[f"n_{split}"] = classes, h.hexdigest()[:16], len(samples)
    return out


def data_difference(before: dict, now: dict) -> str | None:
    """How two ``data_fingerprint``s differ, in words (None if they do not)."""
    if before.get("classes") != now.get("classes"):
        a, b = before.get("classes") or [], now.get("classes") or []
        changed = [f"{x} -> {y}" for x, y in zip(a, b) if x != y][:3]
        return (f"the class list changed ({len(a)} -> {len(b)} classes"
                + (f"; {', '.join(changed)}" if changed else "") + ")")
    for split in ("train", "val"):
        if before.get(split) != now.get(split):
            return (f"the {split}/ images changed ({before.get(f'n_{split}')} -> {now.get(f'n_{split}')} files; "
                    "same count: images moved between class folders, renamed or re-encoded)")
    return None


# ----------------------------------------------------------------------------- held-out halves of val

#: seed of the documented ``select`` / ``test`` split of the val set (``val_split``)
SPLIT_SEED = 0


def val_split(labels, seed: int = SPLIT_SEED, fraction: float = 0.5) -> dict:
    """Split the val set per class into a ``select`` and a ``test`` half, deterministically.

    ``labels``: the class of every val image in manifest order (``dataset_samples(data, "val")``,
    the order ``evaluate`` scores them in). Within each class the images are shuffled by
    ``random.Random(f"split-{seed}-{label}")`` and the first ``floor(n * fraction)`` go to
    ``select``, the rest to ``test`` (an odd class gives ``test`` the extra image). Every model
    choice (tuning, frontier, formula fit) is made on ``select``; claims are reported on ``test``.
    Returns ``{"select": idx, "test": idx}``: sorted int arrays of positions into ``labels``.
    """
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels):
        raise ValueError(f"val_split: labels must be a non-empty 1-d sequence, got shape {labels.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"val_split: fraction must be in (0, 1), got {fraction}")
    select, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label).tolist()
        random.Random(f"split-{seed}-{label}").shuffle(idx)
        k = int(len(idx) * fraction)
        select += idx[:k]
        test += idx[k:]
    return {"select": np.array(sorted(select), dtype=np.int64), "test": np.array(sorted(test), dtype=np.int64)}


def pack_correct(correct, labels) -> dict:
    """Per-image outcomes of one evaluation as a small JSON-able dict (~0.5 kB for Imagenette's val).

    ``{"n": N, "bits": base64(np.packbits(correct)), "labels": [[label, run length], ...]}``: the
    top-1 hit of every val image in manifest order, and the labels run-length encoded (a handful of
    runs: the manifest is sorted by class), so a record alone can be split by ``val_split``, scored on
    any subset, bootstrapped or paired image by image with another model (McNemar).
    """
    import base64

    import numpy as np

    correct = np.asarray(correct, dtype=bool).ravel()
    labels = np.asarray(labels).ravel()
    if len(correct) != len(labels):
        raise ValueError(f"pack_correct: {len(correct)} outcomes but {len(labels)} labels")
    runs = []
    for lab in labels.tolist():
        if runs and runs[-1][0] == lab:
            runs[-1][1] += 1
        else:
            runs.append([int(lab), 1])
    return {"n": int(len(correct)), "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii"),
            "labels": runs}


def unpack_correct(packed: dict):
    """``(correct, labels)`` numpy arrays (bool, int64) from ``pack_correct``'s dict."""
    import base64

    import numpy as np

    n = int(packed["n"])
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))
    if len(bits) < n:
        raise ValueError(f"unpack_correct: {len(bits)} bits for {n} images")
    labels = np.concatenate([np.full(k, lab, dtype=np.int64) for lab, k in packed["labels"]]) \
        if packed["labels"] else np.zeros(0, dtype=np.int64)
    if len(labels) != n:
        raise ValueError(f"unpack_correct: labels cover {len(labels)} images, expected {n}")
    return bits[:n].astype(bool), labels


def split_top1(packed: dict, seed: int = SPLIT_SEED) -> dict:
    """Top-1 (%) of one packed evaluation on the whole val set and on its ``select`` / ``test`` halves."""
    correct, labels = unpack_correct(packed)
    halves = val_split(labels, seed)
    return {"all": 100.0 * correct.mean(), **{k: 100.0 * correct[idx].mean() for k, idx in halves.items()}}


# ----------------------------------------------------------------------------- decoding

def open_rgb(path: str, draft_size: int | None = None):
    """PIL RGB image; a DataError naming the file if it cannot be read or decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if draft_size and im.format == "JPEG":
                im.draft("RGB", (draft_size, draft_size))   # DCT-domain downscale: much faster decode
            return im.convert("RGB")
    except Exception as e:
        raise DataError(f"cannot read image {path!r}: {type(e).__name__}: {e}") from e


def _resize_center(im, resize: int, crop: int):
    from PIL import Image

    w, h = im.size
    s = resize / min(w, h)
    nw, nh = max(crop, round(w * s)), max(crop, round(h * s))
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - crop) // 2, (nh - crop) // 2
    return im.crop((left, top, left + crop, top + crop))


def _decode_task(args):
    import numpy as np

    path, resize, crop = args
    im = _resize_center(open_rgb(path, draft_size=resize), resize, crop)
    return np.asarray(im, dtype=np.uint8).copy()


def _decode_all(paths: list[str], resize: int, crop: int, workers: int, progress: bool, desc: str) -> torch.Tensor:
    from tqdm.auto import tqdm

    n = len(paths)
    x = torch.empty((n, crop, crop, 3), dtype=torch.uint8)
    tasks = [(p, resize, crop) for p in paths]
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False)
    workers = min(workers, os.cpu_count() or 1, max(1, n // 64))
    if workers > 1:
        # Threads, not processes: PIL releases the GIL while decoding and resizing, and forking a
        # process whose torch/OpenMP threads are running (a sweep worker) can deadlock the child.
        from concurrent.futures import ThreadPoolExecutor

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
    if path.is_file():
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged cache is rebuilt, not trusted
            obj = None
            warnings.warn(f"ignoring unreadable tensor cache {path}: {e}; rebuilding it")
        if obj is not None and obj.get("key") == h.hexdigest():
            why = _cache_damage(obj)
            if why is None:
                with contextlib.suppress(OSError):
                    os.utime(path)   # its last use, for `rubik data cache --prune-days`
                return obj
            warnings.warn(f"ignoring tensor cache {path}: {why}; rebuilding it")
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
    import time

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


# ----------------------------------------------------------------------------- tensor pipeline

def _dist_info():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def random_resized_crop_params(n: int, height: int, width: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                               generator=None, tries: int = 10) -> torch.Tensor:
    """torchvision's RandomResizedCrop box sampling, vectorised: ``(n, 4)`` float boxes ``(top, left, h, w)``."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    a = area * torch.empty(n, tries).uniform_(scale[0], scale[1], generator=generator)
    r = torch.exp(torch.empty(n, tries).uniform_(log_r[0], log_r[1], generator=generator))
    w = torch.sqrt(a * r).round()
    h = torch.sqrt(a / r).round()
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    # fallback (no valid try): the whole image, clamped to the ratio range (as torchvision)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fh, fw = height, round(height * ratio[1])
    else:
        fw, fh = width, height
    idx = first.clamp(min=0)
    bw = torch.where(first >= 0, w.gather(1, idx[:, None])[:, 0], torch.full((n,), float(fw)))
    bh = torch.where(first >= 0, h.gather(1, idx[:, None])[:, 0], torch.full((n,), float(fh)))
    u = torch.rand(n, 2, generator=generator)
    top = torch.floor(u[:, 0] * (height - bh + 1))
    left = torch.floor(u[:, 1] * (width - bw + 1))
    fallback = first < 0
    top = torch.where(fallback, torch.floor((height - bh) / 2), top)
    left = torch.where(fallback, torch.floor((width - bw) / 2), left)
    return torch.stack([top, left, bh, bw], 1)


def crop_flip_theta(boxes: torch.Tensor, flip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N, 2, 3)`` affine matrices (``affine_grid``'s normalised coordinates) that crop ``boxes``
    (top, left, h, w) from ``height`` x ``width`` images and mirror where ``flip``."""
    b = boxes.to(torch.float32)
    top, left, h, w = b.unbind(1)
    sx, sy = w / width, h / height
    cx = (left + w / 2) / width * 2 - 1
    cy = (top + h / 2) / height * 2 - 1
    sign = 1.0 - 2.0 * flip.to(b.device, torch.float32)
    zero = torch.zeros_like(sx)
    return torch.stack([sx * sign, zero, cx, zero, sy, cy], 1).view(-1, 2, 3)


def affine_resize(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Float images ``x`` (N,C,H,W) sampled through ``theta`` (N,2,3) at ``size`` x ``size``: one bilinear
    ``grid_sample`` for the whole batch."""
    grid = F.affine_grid(theta.to(x.device), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crop_flip_resize(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` (top, left, h, w) from float images ``x`` (N,C,H,W), flip where ``flip``, resize to
    ``size`` -- one bilinear ``grid_sample`` for the whole batch."""
    theta = crop_flip_theta(boxes.to(x.device), flip.to(x.device), x.shape[-2], x.shape[-1])
    return affine_resize(x, theta, size)


def color_jitter_factors(n: int, strength: float, generator=None) -> torch.Tensor:
    """``(n, 3)`` brightness, contrast, saturation factors, uniform in ``[max(0, 1-s), 1+s]``."""
    return torch.empty(n, 3).uniform_(max(0.0, 1 - strength), 1 + strength, generator=generator)


def color_jitter_batch(x: torch.Tensor, strength: float, generator=None, factors=None) -> torch.Tensor:
    """Batched brightness, contrast, saturation jitter (factors in [1-s, 1+s], fixed order) on [0,1] images;
    ``factors`` (from :func:`color_jitter_factors`) are drawn here if not given."""
    f = factors if factors is not None else color_jitter_factors(x.shape[0], strength, generator)
    f = f.to(x.device)
    x = x * f[:, 0, None, None, None]
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    m = gray.mean((2, 3), keepdim=True)
    x = (x - m) * f[:, 1, None, None, None] + m
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = (x - gray) * f[:, 2, None, None, None] + gray
    return x.clamp_(0, 1)


class _Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


class TensorLoader:
    """Batches from a uint8 tensor cache, augmented as tensors; yields ``(x, y)`` on ``device``.

    Order and augmentation come from a generator seeded by ``(seed, epoch)`` only, so an epoch is
    reproducible on its own (what resuming needs). With ``world_size > 1`` each rank takes its shard
    of the same permutation (padded by repetition like DistributedSampler).

    On CUDA the loop never waits for the GPU: the uint8 cache stays on the device for the whole run
    (or, if it would take more than ``max_device_fraction`` of the free GPU memory, in pinned host
    memory, copied batch by batch without blocking), and each epoch's indices, crop boxes, flips and
    jitter factors are drawn up front on the host -- the same draws, in the same order, as batch by
    batch -- and sent to the device in one non-blocking copy. ``tests/test_cuda.py`` checks that
    iterating raises no synchronisation under ``torch.cuda.set_sync_debug_mode("error")``.
    """

    def __init__(self, x, y, batch_size, *, image_size, train, device="cpu", seed=0, drop_last=None,
                 scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=0.0,
                 rank=0, world_size=1, channels_last=True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 max_device_fraction=0.5):
        self.device = _concrete_device(device)
        self.x = _place_cache(x, self.device, max_device_fraction)
        self.y = y.to(self.device)
        # the cache may be on the device, or (CUDA, too large) in pinned host memory: gather where it lives
        self.cache_on_device = self.x.device == self.device
        self.batch_size, self.image_size, self.train = batch_size, image_size, train
        self.drop_last = train if drop_last is None else drop_last
        self.seed, self.epoch = seed, 0
        self.scale, self.ratio, self.hflip, self.color_jitter = scale, ratio, hflip, color_jitter
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255
        n = len(self.x)
        self.num_samples = math.ceil(n / world_size) if train else len(range(rank, n, world_size))
        self.dataset = _Sized(n)  # ``len(loader.dataset)``: number of images, as for a DataLoader

    def __len__(self):
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def _indices(self, g):
        n = len(self.x)
        if not self.train:
            return torch.arange(self.rank, n, self.world_size)
        perm = torch.randperm(n, generator=g)
        total = self.num_samples * self.world_size
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        return perm[self.rank::self.world_size]

    def epoch_plan(self) -> dict:
        """This epoch's host-side randomness: ``{"index", "boxes", "flip", "jitter"}``, one row per image
        of the epoch (batch after batch), drawn batch by batch from the epoch's generators."""
        # the permutation must be the same on every rank (each takes its shard); augmentation differs per rank
        idx = self._indices(torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919))
        idx = idx[: len(self) * self.batch_size]
        plan = {"index": idx}
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + 1 + self.rank)
            H, W = self.x.shape[-2:]
            boxes, flips, jitter = [], [], []
            for k in range(len(self)):
                b = len(idx[k * self.batch_size:(k + 1) * self.batch_size])
                boxes.append(random_resized_crop_params(b, H, W, self.scale, self.ratio, generator=g))
                flips.append(torch.rand(b, generator=g) < self.hflip)
                if self.color_jitter > 0:
                    jitter.append(color_jitter_factors(b, self.color_jitter, generator=g))
            plan.update(boxes=torch.cat(boxes), flip=torch.cat(flips))
            if jitter:
                plan["jitter"] = torch.cat(jitter)
        return plan

    def _gather(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 images ``self.x[index]`` on the device, without a host sync. ``index`` lives with the cache:
        on the device, one ``index_select``; in pinned host memory, an ``index_select`` straight into a
        pinned buffer and one non-blocking copy (the caching host allocator keeps the buffer until the
        copy is done)."""
        if self.cache_on_device or self.device.type != "cuda":
            return self.x.index_select(0, index).to(self.device)
        buf = torch.empty((len(index), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=True)
        torch.index_select(self.x, 0, index, out=buf)
        return buf.to(self.device, non_blocking=True)

    def __iter__(self):
        host_plan = self.epoch_plan()
        if self.train:   # the crop/flip as affine matrices, for the whole epoch at once (a handful of ops)
            H, W = self.x.shape[-2:]
            host_plan["theta"] = crop_flip_theta(host_plan.pop("boxes"), host_plan.pop("flip"), H, W)
        plan = {k: _to_device(v, self.device) for k, v in host_plan.items()}
        # index the cache where it lives: with a device index (device) or the host one (pinned host memory);
        # indexing a CUDA tensor with a host index would copy the index with a blocking copy
        index_on_x = plan["index"] if self.cache_on_device else host_plan["index"]
        bs = self.batch_size
        for k in range(len(self)):
            sl = slice(k * bs, (k + 1) * bs)
            xb = self._gather(index_on_x[sl]).float()
            yb = self.y.index_select(0, plan["index"][sl])
            if self.train:
                xb = affine_resize(xb, plan["theta"][sl], self.image_size)
                if "jitter" in plan:
                    xb = color_jitter_batch(xb / 255, self.color_jitter, factors=plan["jitter"][sl]) * 255
            elif xb.shape[-1] != self.image_size:
                xb = F.interpolate(xb, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                                   align_corners=False)
            xb = (xb - self.mean) / self.std
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb


def _place_cache(x: torch.Tensor, device: torch.device, max_device_fraction: float) -> torch.Tensor:
    """The uint8 cache on ``device`` if it fits (CUDA: at most ``max_device_fraction`` of the free memory),
    else in pinned host memory (CUDA) or as it is (CPU)."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() <= max_device_fraction * free:
        return x.to(device)
    warnings.warn(f"tensor cache of {x.numel() * x.element_size() / 2**30:.1f} GiB does not fit in "
                  f"{max_device_fraction:.0%} of the free GPU memory: kept in pinned host memory")
    return x.pin_memory()


def _concrete_device(device) -> torch.device:
    """``device`` with its index: ``"cuda"`` is the current CUDA device (``torch.device("cuda")`` compares
    unequal to the ``cuda:0`` a tensor reports)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` without a host sync: host tensors go through pinned memory, non-blocking."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


# ----------------------------------------------------------------------------- folder pipeline

class FolderDataset(torch.utils.data.Dataset):
    def __init__(self, root, samples, transform):
        self.root, self.samples, self.transform = Path(root), samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        rel, label = self.samples[i]
        return self.transform(open_rgb(str(self.root / rel))), label


def folder_transforms(image_size: int, train: bool, *, scale=(0.08, 1.0), color_jitter=0.4, rand_augment=False):
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    norm = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        return T.Compose([T.Resize(int(image_size / CROP_PCT), interpolation=bicubic), T.CenterCrop(image_size)] + norm)
    t = [T.RandomResizedCrop(image_size, scale=scale, interpolation=bicubic), T.RandomHorizontalFlip()]
    if rand_augment:
        t.append(T.RandAugment(num_ops=2, magnitude=9, interpolation=bicubic))
    if color_jitter:
        t.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    return T.Compose(t + norm)


class FolderLoader:
    """DataLoader over a FolderDataset that moves batches to the device (channels_last), with ``set_epoch``."""

    def __init__(self, dataset, batch_size, *, train, device, workers, seed=0, distributed=False, channels_last=True,
                 collate_fn=None):
        from torch.utils.data import DataLoader, DistributedSampler

        self.device, self.channels_last, self.seed, self.dataset = torch.device(device), channels_last, seed, dataset
        self.generator = torch.Generator()
        self.sampler = None
        if distributed and train:
            self.sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=False)
        elif distributed:  # eval: an exact, unpadded shard per rank (counts are summed across ranks)
            rank, world = _dist_info()
            self.sampler = list(range(rank, len(dataset), world))
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=train and self.sampler is None,
                                 sampler=self.sampler, num_workers=workers, drop_last=train,
                                 pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                                 generator=self.generator, collate_fn=collate_fn)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        with worker_errors():
            for x, y in self.loader:
                x = x.to(self.device, non_blocking=True)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                yield x, y.to(self.device, non_blocking=True)


@contextlib.contextmanager
def worker_errors():
    """Around iterating a DataLoader: a ``DataError`` raised in a worker process (an image that cannot
    be decoded) comes back from torch with the worker's whole traceback as its message; raise it again
    with its own one-line message (which names the file)."""
    try:
        yield
    except DataError as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        last = [ln for ln in text.splitlines() if "DataError: " in ln]
        raise DataError(last[-1].split("DataError: ", 1)[1] if last else text.splitlines()[0]) from None


# ----------------------------------------------------------------------------- entry point

def choose_pipeline(data: DataConfig, image_size: int, num_images: int, rand_augment: bool = False) -> str:
    if data.pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {data.pipeline!r}; expected one of {PIPELINES}")
    if data.pipeline != "auto":
        return data.pipeline
    cache_bytes = num_images * 3 * int(image_size / CROP_PCT) ** 2
    return "tensor" if (image_size <= 160 and cache_bytes <= 8 * 2**30 and not rand_augment) else "folder"


def build_loaders(data: DataConfig, image_size: int, batch_size: int, *, device, distributed=False,
                  rand_augment=False, color_jitter: float = 0.0, scale=(0.08, 1.0), progress: bool = True,
                  eval_batch_size: int | None = None, channels_last: bool = True, seed: int | None = None):
    """``(train_loader, val_loader, num_classes)``; see the module docstring for the two pipelines.

    ``batch_size`` is per process. ``distributed`` shards both splits over the initialised process group.
    ``seed`` drives shuffling and augmentation (default ``data.seed``, which also picks the subsample).
    """
    seed = data.seed if seed is None else seed
    device = torch.device(device)
    rank, world = _dist_info() if distributed else (0, 1)
    root, classes, train_samples = dataset_samples(data, "train")
    eval_bs = eval_batch_size or max(batch_size, 256)
    pipeline = choose_pipeline(data, image_size, len(train_samples), rand_augment)
    if pipeline == "gpu_jpeg" and not gpu_jpeg_available(device):
        warnings.warn(f"pipeline 'gpu_jpeg' needs a CUDA device (got {device}): using the 'folder' pipeline",
                      RuntimeWarning, stacklevel=2)
        pipeline = "folder"
    if pipeline == "gpu_jpeg" and rand_augment:
        raise ValueError("RandAugment needs the 'folder' pipeline (pipeline='folder')")
    if pipeline == "tensor":
        if rand_augment:
            raise ValueError("RandAugment needs the 'folder' pipeline (pipeline='folder')")
        # rank 0 builds the caches first so other ranks only load them
        if distributed and rank != 0:
            torch.distributed.barrier()
        tr = tensor_cache(data, "train", image_size, progress=progress and rank == 0)
        va = tensor_cache(data, "val", image_size, progress=progress and rank == 0)
        if distributed and rank == 0:
            torch.distributed.barrier()
        common = dict(image_size=image_size, device=device, seed=seed, rank=rank, world_size=world,
                      channels_last=channels_last)
        train_loader = TensorLoader(tr["x"], tr["y"], batch_size, train=True, scale=scale,
                                    color_jitter=color_jitter, **common)
        val_loader = TensorLoader(va["x"], va["y"], eval_bs, train=False, **common)
    elif pipeline == "gpu_jpeg":
        _, _, val_samples = dataset_samples(data, "val")
        train_loader, val_loader = build_gpu_jpeg_loaders(
            root, train_samples, val_samples, image_size, batch_size, eval_bs, device=device, workers=data.workers,
            seed=seed, distributed=distributed, channels_last=channels_last, scale=scale, color_jitter=color_jitter)
    else:
        _, _, val_samples = dataset_samples(data, "val")
        tt = folder_transforms(image_size, True, scale=scale, color_jitter=color_jitter, rand_augment=rand_augment)
        vt = folder_transforms(image_size, False)
        train_loader = FolderLoader(FolderDataset(root, train_samples, tt), batch_size, train=True, device=device,
                                    workers=data.workers, seed=seed, distributed=distributed,
                                    channels_last=channels_last)
        val_loader = FolderLoader(FolderDataset(root, val_samples, vt), eval_bs, train=False, device=device,
                                  workers=data.workers, seed=seed, distributed=distributed,
                                  channels_last=channels_last)
    train_loader.pipeline = val_loader.pipeline = pipeline
    return train_loader, val_loader, len(classes)


# ----------------------------------------------------------------------------- GPU JPEG pipeline
#
# ``pipeline="gpu_jpeg"`` (full-resolution ImageNet on a GPU, where PIL decoding in DataLoader workers
# cannot keep up with a small model): workers only read the file bytes and the image size from the
# JPEG header, and draw the RandomResizedCrop box and the flip (torchvision's sampling, from
# ``random_resized_crop_params``); the main process decodes the whole batch at once with nvJPEG
# (``torchvision.io.decode_jpeg(list, device="cuda")``), then crops, resizes (bilinear, antialiased),
# flips, jitters and normalises on the device. Evaluation is the folder pipeline's transform (resize
# the shorter side to ``floor(size / 0.875)`` bicubic, centre crop) done on the device. Files nvJPEG
# cannot take (CMYK/YCCK JPEGs, PNGs named .JPEG, as a few in ImageNet) are decoded by PIL in the
# worker and travel as pixels. Without CUDA, ``build_loaders`` falls back to the folder pipeline with a
# warning; ``GpuJpegLoader`` itself also runs on the CPU (``torchvision``'s CPU decoder), which is
# how it is tested.

def _decode_jpegs(datas: list, device) -> list:
    """nvJPEG / libjpeg batch decode to RGB uint8 (3,H,W) tensors; per image with fallbacks if the batch fails."""
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torchvision >= 0.29 deprecates its decoders in favour of TorchCodec
        try:
            return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            out = []
            for d in datas:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(decode_image(d, mode=ImageReadMode.RGB).to(device))
            return out


class EncodedImageFolder(torch.utils.data.Dataset):
    """Items ``(payload, is_jpeg, box, flip, label)``: the file's bytes (or, for what nvJPEG cannot decode,
    its RGB pixels), and for training a RandomResizedCrop box ``(top, left, h, w)`` and a flip flag."""

    def __init__(self, root, samples, *, train: bool, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5):
        self.root, self.samples, self.train = Path(root), samples, train
        self.scale, self.ratio, self.hflip = scale, ratio, hflip

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        import io

        import numpy as np
        from PIL import Image

        rel, label = self.samples[i]
        path = self.root / rel
        try:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as im:   # the header only, unless it needs a CPU decode
                w, h = im.size
                is_jpeg = im.format == "JPEG" and im.mode in ("RGB", "L")
                if not is_jpeg:
                    pixels = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
        except Exception as e:
            raise DataError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}") from e
        payload = torch.frombuffer(bytearray(data), dtype=torch.uint8) if is_jpeg else pixels
        box, flip = torch.zeros(4), False
        if self.train:
            box = random_resized_crop_params(1, h, w, self.scale, self.ratio)[0]
            flip = bool(torch.rand(()) < self.hflip)
        return payload, is_jpeg, box, flip, label


def _collate_encoded(items):
    # all JPEG bytes of the batch in one buffer: one shared-memory tensor per batch between processes,
    # not one per image (hundreds of file descriptors per batch otherwise)
    payloads, is_jpeg, boxes, flips, labels = zip(*items)
    jpegs = [p for p, j in zip(payloads, is_jpeg) if j]
    buffer = torch.cat(jpegs) if jpegs else torch.empty(0, dtype=torch.uint8)
    lengths = torch.tensor([len(p) for p in jpegs], dtype=torch.int64)
    pixels = [p for p, j in zip(payloads, is_jpeg) if not j]
    return (buffer, lengths, pixels, torch.tensor(is_jpeg, dtype=torch.bool), torch.stack(boxes),
            torch.tensor(flips, dtype=torch.bool), torch.tensor(labels, dtype=torch.int64))


class GpuJpegLoader(FolderLoader):
    """``FolderLoader`` over file bytes; decoding and augmentation happen on ``device`` (see the section note)."""

    def __init__(self, root, samples, batch_size, *, image_size: int, train: bool, device, workers: int,
                 seed: int = 0, distributed: bool = False, channels_last: bool = True, scale=(0.08, 1.0),
                 ratio=(3 / 4, 4 / 3), hflip: float = 0.5, color_jitter: float = 0.0,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        dataset = EncodedImageFolder(root, samples, train=train, scale=scale, ratio=ratio, hflip=hflip)
        self.image_size, self.train, self.color_jitter = image_size, train, color_jitter
        self.aug_generator = torch.Generator()
        super().__init__(dataset, batch_size, train=train, device=device, workers=workers, seed=seed,
                         distributed=distributed, channels_last=channels_last, collate_fn=_collate_encoded)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.aug_generator.manual_seed(self.seed * 1_000_003 + epoch * 7919 + 2)

    def decode(self, buffer, lengths, pixels, is_jpeg) -> list:
        """RGB uint8 (3,H,W) images on the device, in batch order."""
        jpegs = list(torch.split(buffer, lengths.tolist())) if len(lengths) else []
        decoded = iter(_decode_jpegs(jpegs, self.device) if jpegs else [])
        others = iter(pixels)
        return [next(decoded) if j else next(others).to(self.device, non_blocking=True) for j in is_jpeg.tolist()]

    def _train_batch(self, images, boxes, flips):
        s = self.image_size
        crops = []
        for im, (top, left, h, w) in zip(images, boxes.round().long().tolist()):
            crop = im[:, top:top + h, left:left + w].unsqueeze(0).float()
            crops.append(F.interpolate(crop, size=(s, s), mode="bilinear", antialias=True, align_corners=False))
        x = torch.cat(crops)
        flips = flips.to(self.device, non_blocking=True)
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
        if self.color_jitter > 0:
            x = color_jitter_batch(x / 255, self.color_jitter, generator=self.aug_generator) * 255
        return x

    def _eval_batch(self, images):
        # torchvision's Resize(int) + CenterCrop: shorter side -> floor(size / 0.875), longer side scaled and truncated
        s, r = self.image_size, int(self.image_size / CROP_PCT)
        out = []
        for im in images:
            h, w = im.shape[-2:]
            nh, nw = (r, int(r * w / h)) if h <= w else (int(r * h / w), r)
            x = F.interpolate(im.unsqueeze(0).float(), size=(nh, nw), mode="bicubic", antialias=True,
                              align_corners=False)
            top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
            out.append(x[:, :, top:top + s, left:left + s])
        return torch.cat(out).clamp_(0, 255)   # bicubic overshoots; PIL's uint8 output is clamped

    def __iter__(self):
        for buffer, lengths, pixels, is_jpeg, boxes, flips, y in self.loader:
            images = self.decode(buffer, lengths, pixels, is_jpeg)
            x = self._train_batch(images, boxes, flips) if self.train else self._eval_batch(images)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def gpu_jpeg_available(device) -> bool:
    """The GPU JPEG pipeline's condition: a CUDA device (nvJPEG comes with torchvision's CUDA build)."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def build_gpu_jpeg_loaders(root, train_samples, val_samples, image_size, batch_size, eval_batch_size, *, device,
                           workers, seed, distributed, channels_last, scale, color_jitter):
    common = dict(image_size=image_size, device=device, workers=workers, seed=seed, distributed=distributed,
                  channels_last=channels_last)
    train_loader = GpuJpegLoader(root, train_samples, batch_size, train=True, scale=scale, color_jitter=color_jitter,
                                 **common)
    val_loader = GpuJpegLoader(root, val_samples, eval_batch_size, train=False, **common)
    return train_loader, val_loader
