"""``rubik data compact SRC DST``: a small copy of an ImageFolder dataset to carry to another machine.

Every image of ``SRC/train`` and ``SRC/val`` is decoded, its shorter side resized to ``--short-side``
px (bicubic; images already smaller are only re-encoded) and written as a JPEG of ``--quality`` to the
same relative path under ``DST`` (class folders and file names kept, so labels and file lists agree
with the source). Files are written atomically (temp file + ``os.replace``) and files that already
exist in ``DST`` are skipped, so an interrupted copy resumes where it stopped; ``DST/compact.json``
records the settings, and resuming with other settings is refused.

Why 91 px for the Imagenette study: at base 64 px the largest twist (r = 1.25) trains at 80 px and
the tensor cache stores train images at ``int(80 / 0.875) = 91`` px (shorter side) and val images
resized to 91 then centre-cropped to 80 (``rubik.data.tensor_cache``), so a 91-px copy holds every
pixel the study's cache uses and Imagenette (13,394 images) becomes ~40 MB at quality 85.

    rubik data compact /data/imagenette .devdata/imagenette --short-side 91 --quality 85
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

from rubik.data import DataConfig, DataError, _default_cache_dir, _is_image, cache_files, open_rgb, prune_cache
from rubik.rundir import atomic_write_bytes

SPLITS = ("train", "val")
SETTINGS_FILE = "compact.json"


def list_images(src: Path) -> list[str]:
    """Relative paths of every image under ``src/train`` and ``src/val``, sorted."""
    found = []
    for split in SPLITS:
        top = src / split
        if not top.is_dir():
            raise DataError(f"{str(src)!r} has no {split}/ folder: expected the ImageFolder layout "
                            f"SRC/train/<class>/<image> and SRC/val/<class>/<image>")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(src)
            found.extend(str(rel / f) for f in sorted(filenames) if _is_image(f))
    if not found:
        raise DataError(f"{str(src)!r} contains no images under train/ and val/")
    return found


def compact_image(src_path: str, dst_path: str, short_side: int, quality: int) -> int:
    """Decode, resize the shorter side to ``short_side`` (never up), write a JPEG atomically; its size in bytes."""
    from PIL import Image

    im = open_rgb(src_path, draft_size=short_side)   # draft: DCT-domain downscale first, as the tensor cache does
    w, h = im.size
    if min(w, h) > short_side:
        s = short_side / min(w, h)
        im = im.resize((max(short_side, round(w * s)), max(short_side, round(h * s))), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    dst = Path(dst_path)
    atomic_write_bytes(dst, buf.getvalue())
    return dst.stat().st_size


def _task(args):
    return compact_image(*args)


def compact_dataset(src, dst, *, short_side: int = 91, quality: int = 85, workers: int | None = None,
                    progress: bool = True) -> dict:
    """Write the compact copy of ``src`` into ``dst`` (resumable); ``{"images", "written", "skipped", "bytes"}``."""
    from concurrent.futures import ProcessPoolExecutor

    from rubik._progress import tqdm

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if short_side < 8:
        raise ValueError(f"--short-side must be at least 8 px, got {short_side}")
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality must be in 1..100, got {quality}")
    if not src.is_dir():
        raise DataError(f"source {str(src)!r} does not exist or is not a folder")
    if src.resolve() == dst.resolve() or src.resolve() in dst.resolve().parents:
        raise ValueError(f"destination {str(dst)!r} must not be the source or inside it")
    settings = {"source": str(src.resolve()), "short_side": short_side, "quality": quality}
    marker = dst / SETTINGS_FILE
    if marker.is_file():
        old = json.loads(marker.read_text())
        if {k: old.get(k) for k in ("short_side", "quality")} != {k: settings[k] for k in ("short_side", "quality")}:
            raise ValueError(f"{str(dst)!r} holds a compact copy made with short side {old.get('short_side')} and "
                             f"quality {old.get('quality')}; use another destination or the same settings")
    files = list_images(src)
    dst.mkdir(parents=True, exist_ok=True)
    for stale in dst.glob("*/*/*.tmp"):   # temp files of a killed run (never renamed into place)
        stale.unlink()
    marker.write_text(json.dumps(settings, indent=1) + "\n")
    todo = [f for f in files if not (dst / f).is_file()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(files), initial=len(files) - len(todo), desc=f"compact {short_side}px q{quality}",
               unit="img", disable=not progress)
    tasks = [(str(src / f), str(dst / f), short_side, quality) for f in todo]
    try:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_task, tasks, chunksize=32):
                    bar.update(1)
        else:
            for t in tasks:
                _task(t)
                bar.update(1)
    finally:
        bar.close()
    total = sum((dst / f).stat().st_size for f in files)
    return {"images": len(files), "written": len(todo), "skipped": len(files) - len(todo), "bytes": total}


# ----------------------------------------------------------------------------- CLI (`rubik data ...`)

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("compact", help="re-encode an ImageFolder (train/, val/) at a small size (resumable)",
                       description="rubik data compact SRC DST: a small copy of an ImageFolder dataset to "
                                   "carry to another machine")
    p.add_argument("src", help="ImageFolder root with train/ and val/")
    p.add_argument("dst", help="output folder (created; files already there are kept)")
    p.add_argument("--short-side", type=int, default=91,
                   help="shorter side in px (default 91: the Imagenette study's largest tensor-cache size)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("cache", help="the tensor cache: its size and files; --prune-days N deletes those unused "
                                     "for N days")
    p.add_argument("--dir", default=None, help="cache folder (default $RUBIK_CACHE_DIR or ~/.cache/rubik)")
    p.add_argument("--prune-days", type=float, default=None, metavar="N",
                   help="delete cache files not used for N days (they are decoded again when next needed)")


def _cache_main(args) -> int:
    folder = args.dir or str(_default_cache_dir(DataConfig()))
    if args.prune_days is not None:
        gone = prune_cache(args.prune_days, folder)
        print(f"{folder}: deleted {len(gone)} file(s) unused for {args.prune_days:g} days, "
              f"{sum(f['bytes'] for f in gone) / 1e9:.2f} GB freed")
    files = cache_files(folder)
    now = time.time()
    print(f"{folder}: {len(files)} tensor cache file(s), {sum(f['bytes'] for f in files) / 1e9:.2f} GB")
    for f in files:
        print(f"  {f['bytes'] / 1e6:9.1f} MB  last used {(now - f['last_used']) / 86400:6.1f} days ago  {f['path'].name}")
    return 0


def main(args) -> int:
    if args.data_command == "cache":
        return _cache_main(args)
    try:
        out = compact_dataset(args.src, args.dst, short_side=args.short_side, quality=args.quality,
                              workers=args.workers, progress=not args.no_progress)
    except (DataError, ValueError) as e:
        print(f"rubik data {args.data_command}: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.dst}: {out['images']} images ({out['written']} written, {out['skipped']} already there), "
          f"{out['bytes'] / 1e6:.1f} MB")
    return 0
