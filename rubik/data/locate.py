"""Locating a dataset: ``DataConfig``, the ImageFolder root, its class and file lists, ImageNet-100.

Every dataset is an ImageFolder layout ``ROOT/{train,val}/<class>/<image>``; the class list is the
sorted folder names of ``train/`` (so labels agree between splits). ``dataset_samples`` gives a
split's ``(relative path, label)`` list after the ImageNet-100 manifest and subsampling, and
``data_fingerprint`` digests it so a resumed run can check it sees the same data.

ImageNet-100 (paper): 100 random classes (seeded), 500 random train images per class, all 50 val
images of those classes (5,000). ``build_imagenet100_manifest`` writes the class list and file
lists to JSON; nothing is copied.

Errors are loud: a wrong root, a missing split or an empty class folder raises a ``DataError``
naming the folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from rubik.errors import UserError
from rubik.rundir import atomic_write_bytes

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
DATASETS = ("imagenette", "imagenet", "imagenet100", "folder")
#: Imagenette's 10 class folders (WordNet ids) and their ImageNet class names, for figures and tables
IMAGENETTE_CLASS_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn", "n03417042": "garbage truck",
    "n03425413": "gas pump", "n03445777": "golf ball", "n03888605": "parachute",
}


def class_name(folder: str) -> str:
    """A class folder's readable name: Imagenette's WordNet ids by name, any other folder as it is."""
    return IMAGENETTE_CLASS_NAMES.get(folder, folder)


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
    # imported here: torchvision takes seconds to import and only a download needs its datasets
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


def _manifest_samples(data: DataConfig, root: Path, split: str) -> tuple[list[str], list[tuple[str, int]]]:
    """``(classes, samples)`` of ``split`` from the ImageNet-100 manifest, checked against ``root``."""
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
    return classes, samples


def dataset_samples(data: DataConfig, split: str) -> tuple[Path, list[str], list[tuple[str, int]]]:
    """``(root, classes, [(relative path, label)])`` for a split, after manifest and subsampling."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = resolve_root(data)
    if data.name == "imagenet100":
        classes, samples = _manifest_samples(data, root, split)
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
