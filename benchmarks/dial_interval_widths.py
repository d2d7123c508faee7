"""How wide are the dial-slope intervals of notebook 03 with n random models?

Subsamples the committed 100-model Imagenette sweep (``data/results/imagenette/sweep``: 5 epochs on
the full training set, scored on the whole val split) to ``n`` random models spread evenly over
FLOPs (every len/n-th by FLOPs, at ``--draws`` offsets) plus its 5 references, and prints
``rubik.frontier.dial_importance``'s slopes (top-1 points per doubling at fixed FLOPs) and the width
of their 95 % bootstrap intervals, averaged over the draws. It sized the ``cpu`` preset's
``n_models``; its models train ~3x shorter, so their per-model noise differs.

    PYTHONPATH=. .venv/bin/python benchmarks/dial_interval_widths.py            # ~1 min
    PYTHONPATH=. .venv/bin/python benchmarks/dial_interval_widths.py --n 12 28 100
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main():
    from rubik.frontier import dial_importance
    from rubik.paper import label_trials
    from rubik.sweep import finished, load_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", default=str(ROOT / "data/results/imagenette/sweep"))
    ap.add_argument("--n", type=int, nargs="+", default=[12, 24, 28, 32])
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--n-boot", type=int, default=500)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    done = finished(label_trials(load_results(args.sweep)))
    rnd = done[done.kind == "random"].sort_values("flops")
    refs = done[done.kind != "random"]
    print(f"{len(rnd)} random models + {len(refs)} references; top-1 {done.top1.min():.1f}-{done.top1.max():.1f} %")
    print("n_random  slope r / d / w (mean)   95% interval width r / d / w (mean)")
    for n in args.n:
        rows = []
        for k in range(args.draws):
            idx = np.clip(np.linspace(0, len(rnd) - 1, min(n, len(rnd))).round().astype(int) + k - args.draws // 2,
                          0, len(rnd) - 1)
            sub = pd.concat([rnd.iloc[np.unique(idx)], refs])
            imp = dial_importance(sub, y="top1", x="flops", n_boot=args.n_boot, dropna=True, seed=k).set_index("dial")
            rows.append([[imp.loc[d, "slope"], imp.loc[d, "slope_hi"] - imp.loc[d, "slope_lo"]] for d in "rdw"])
        a = np.array(rows).mean(0)
        print(f"{n:8d}  {a[0, 0]:+6.1f} {a[1, 0]:+6.1f} {a[2, 0]:+6.1f}       "
              f"{a[0, 1]:6.1f} {a[1, 1]:6.1f} {a[2, 1]:6.1f}")


if __name__ == "__main__":
    main()
