"""Data: ImageNet-1k, ImageNet-100 (the paper's subset) and Imagenette, two pipelines.

Every dataset is an ImageFolder layout ``ROOT/{train,val}/<class>/<image>``; the
class list is the sorted folder names of ``train/`` (so labels agree between
splits). ``DataConfig`` picks the dataset and options; ``build_loaders`` returns
``(train_loader, val_loader, num_classes)``. Both loaders yield ``(images, labels)``
batches already on the device (float, normalised, channels_last) and have
``set_epoch(epoch)`` and ``len()``.

Two pipelines:

* ``"tensor"`` (proxy runs at small resolution): every image is decoded and resized
  *once* (a multiprocessing pool, tqdm bar) into a uint8 tensor file in the cache
  directory, written atomically and keyed by dataset / split / subsample / size and a
  hash of the file list with sizes and mtimes (so it is rebuilt when the source
  changes). Training batches are then augmented as tensors: a batched
  random-resized-crop + horizontal flip through one ``affine_grid``/``grid_sample``
  (bilinear), an optional batched colour jitter, normalisation. No PIL in the loop.
  Train images are stored at ``floor(size / 0.875)`` px (shorter side resized,
  centre square crop) so the crops keep some detail; val images are stored already
  through the standard eval transform (resize ``floor(size / 0.875)`` bicubic, centre
  crop ``size``), so evaluation is exact.
* ``"folder"`` (full resolution ImageNet): torchvision transforms + DataLoader
  workers: RandomResizedCrop(0.08-1, bicubic), flip, ColorJitter(0.4), optional
  RandAugment; eval resize ``floor(size / 0.875)`` + centre crop.

ImageNet-100 (paper): 100 random classes (seeded), 500 random train images per
class, all 50 val images of those classes (5,000). ``build_imagenet100_manifest``
writes the class list and file lists to JSON; nothing is copied.

Errors are loud: a wrong root, a missing split, an empty class folder or an image
that cannot be decoded raises an error naming the folder or file.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875
DATASETS = ("imagenette", "imagenet", "imagenet100", "folder")
PIPELINES = ("auto", "tensor", "folder")
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


class DataError(RuntimeError):
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
        _atomic_write_bytes(Path(path), json.dumps(manifest, indent=1).encode())
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


def _atomic_write_bytes(path: Path, payload: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to a temp file in the same folder, then ``os.replace`` (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    path = _default_cache_dir(data) / fname
    if path.is_file():
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if obj.get("key") == h.hexdigest():
                return obj
        except Exception as e:  # a damaged cache is rebuilt, not trusted
            warnings.warn(f"ignoring unreadable tensor cache {path}: {e}")
    x = _decode_all([str(root / rel) for rel, _ in samples], resize, crop, data.workers, progress,
                    desc=f"caching {data.name}/{split} @{crop}px")
    obj = {"x": x, "y": torch.tensor([lab for _, lab in samples], dtype=torch.int64), "classes": classes,
           "key": h.hexdigest(), "root": str(root), "files": [rel for rel, _ in samples]}
    atomic_torch_save(obj, path)
    return obj


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


def crop_flip_resize(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` (top, left, h, w) from float images ``x`` (N,C,H,W), flip where ``flip``, resize to
    ``size`` -- one bilinear ``grid_sample`` for the whole batch."""
    n, _, H, W = x.shape
    b = boxes.to(x.device, torch.float32)
    top, left, h, w = b.unbind(1)
    sx, sy = w / W, h / H
    cx = (left + w / 2) / W * 2 - 1
    cy = (top + h / 2) / H * 2 - 1
    sign = 1.0 - 2.0 * flip.to(x.device, torch.float32)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = sx * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


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
        self.device = torch.device(device)
        self.x = _place_cache(x, self.device, max_device_fraction)
        self.y = y.to(self.device)
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

    def __iter__(self):
        host_plan = self.epoch_plan()
        plan = {k: _to_device(v, self.device) for k, v in host_plan.items()}
        # gather where the cache lives (the device, or pinned host memory for a cache too large for it)
        index_on_x = plan["index"] if self.x.device == self.device else host_plan["index"]
        bs = self.batch_size
        for k in range(len(self)):
            sl = slice(k * bs, (k + 1) * bs)
            bi = plan["index"][sl]
            xb = _to_device(self.x[index_on_x[sl]], self.device).float()
            yb = self.y[bi]
            if self.train:
                xb = crop_flip_resize(xb, plan["boxes"][sl], plan["flip"][sl], self.image_size)
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

    def __init__(self, dataset, batch_size, *, train, device, workers, seed=0, distributed=False, channels_last=True):
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
                                 generator=self.generator)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


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
