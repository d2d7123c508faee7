"""What the tensor cache's content check costs: SHA-256 of a cache file's tensors vs one epoch.

    PYTHONPATH=. .venv/bin/python benchmarks/cache_digest.py [--cache FILE] [--sweep data/results/imagenette_long/sweep]

``rubik.data.tensor_cache`` checks the stored digest (``rubik.data.tensor_digest``) each time it loads a
cache file: once per split per training run, not per epoch. This prints the load time, the digest time
(best of 3) and their ratio to the median epoch time of the ``--sweep``'s records that trained on the
same stored image size (train images are stored at ``int(resolution / 0.875)`` px).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main(argv=None) -> int:
    import torch

    from rubik.data import CROP_PCT, _default_cache_dir, DataConfig, tensor_digest

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=None, help="a *_train_all_* cache file (default: the largest in the cache folder)")
    p.add_argument("--sweep", default="data/results/imagenette_long/sweep")
    args = p.parse_args(argv)
    path = Path(args.cache) if args.cache else max(_default_cache_dir(DataConfig()).glob("*_train_all_*.pt"),
                                                   key=lambda q: q.stat().st_size)
    t = time.perf_counter()
    obj = torch.load(path, map_location="cpu", weights_only=True)
    load_s = time.perf_counter() - t
    mb = (obj["x"].numel() + obj["y"].numel() * 8) / 2**20
    times = []
    for _ in range(3):
        t = time.perf_counter()
        tensor_digest(obj["x"], obj["y"])
        times.append(time.perf_counter() - t)
    digest_s = min(times)
    px = obj["x"].shape[-1]
    epochs = []
    for rec in Path(args.sweep).glob("trials/*.json"):
        r = json.loads(rec.read_text())
        res = (r.get("metrics") or {}).get("resolution")
        if res and int(res / CROP_PCT) == px:
            epochs += [h["epoch_time_s"] for h in r["metrics"].get("history", []) if h.get("epoch_time_s")]
    print(f"{path.name}: {tuple(obj['x'].shape)} uint8, {mb:.1f} MiB; torch.load {load_s:.3f} s; "
          f"SHA-256 {digest_s:.3f} s ({digest_s / mb * 1e3:.2f} ms/MiB)")
    if epochs:
        ep = statistics.median(epochs)
        print(f"median epoch of {len(epochs)} epochs at {px} px stored ({args.sweep}): {ep:.1f} s; the check "
              f"(once per run) is {100 * digest_s / ep:.2f} % of one epoch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
