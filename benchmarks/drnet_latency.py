"""Per-image CPU latency of DRNet's routed inference against the backbone at each fixed resolution.

Measured side by side in one run: every test image (batch 1) goes through every model in a rotating
order, so a change of machine load touches all models alike. DRNet's time includes its predictor, the
resize of the 32-px view and of the image to the chosen resolution, and the chosen branch only; the
fixed models are the experiment's ``fixed_<px>`` runs (one candidate, the same pixels resized inside).

    python benchmarks/drnet_latency.py runs/drnet/imagenette/seed1 --data ../shared/datasets/imagenette

Prints one row per model: mean FLOPs per image (analytic, predictor included), median and mean ms per
image, and both as ratios to the largest fixed resolution. The numbers are only as quiet as the
machine: run it with nothing else on the cores (REPORT's command pauses the study's processes).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seed_dir", help="one seed's folder of a DRNet experiment (holds fixed_*/ and joint_*/)")
    ap.add_argument("--data", required=True, help="the dataset root the experiment used")
    ap.add_argument("--images", type=int, default=300, help="test images timed (default 300)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from rubik.data import DataConfig, TensorLoader, tensor_cache, val_split
    from rubik.drnet.evaluate import load_drnet

    torch.set_num_threads(args.threads)
    seed_dir = Path(args.seed_dir)
    ckpts = sorted(seed_dir.glob("fixed_*/checkpoint.pt"), key=lambda p: -int(p.parent.name.split("_")[1]))
    ckpts += sorted(seed_dir.glob("joint_*/checkpoint.pt"))
    if not ckpts:
        ap.error(f"{seed_dir}: no fixed_*/checkpoint.pt or joint_*/checkpoint.pt")
    models = {}
    for p in ckpts:
        m, _ = load_drnet(p)
        models[p.parent.name] = m.eval()
    size = max(m.resolution for m in models.values())
    va = tensor_cache(DataConfig(root=args.data, name="imagenette", workers=1), "val", size, progress=False)
    test = val_split(va["y"].numpy())["test"]
    pick = np.random.default_rng(0).choice(test, size=min(args.images, len(test)), replace=False)
    index = torch.as_tensor(pick)
    # the images as evaluation feeds them: the tensor pipeline's eval transform, one per batch
    images = [x for x, _ in TensorLoader(va["x"][index], va["y"][index], 1, image_size=size, train=False)]

    names = list(models)
    times = {n: [] for n in names}
    flops = {n: [] for n in names}
    with torch.inference_mode():
        for x in images[: args.warmup]:
            for n in names:
                models[n](x)
        for j, x in enumerate(images):
            for n in names[j % len(names):] + names[: j % len(names)]:   # rotate who goes first
                m = models[n]
                t0 = time.perf_counter()
                m(x)
                times[n].append(1000 * (time.perf_counter() - t0))
                flops[n].append(float(m.image_flops(m.last_choice, predicted=m.joint).sum()))
    ref = names[0]   # the largest fixed resolution
    ref_med, ref_mean, ref_flops = statistics.median(times[ref]), statistics.fmean(times[ref]), np.mean(flops[ref])
    print(f"{len(pick)} test images, batch 1, {args.threads} thread(s), torch {torch.__version__}; "
          f"ratios to {ref}")
    print(f"{'model':<12} {'MFLOPs':>7} {'median ms':>9} {'mean ms':>8} {'FLOPs x':>8} {'median x':>9} {'mean x':>7}")
    for n in names:
        med, avg, fl = statistics.median(times[n]), statistics.fmean(times[n]), float(np.mean(flops[n]))
        print(f"{n:<12} {fl / 1e6:7.2f} {med:9.2f} {avg:8.2f} {fl / ref_flops:8.2f} {med / ref_med:9.2f} "
              f"{avg / ref_mean:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
