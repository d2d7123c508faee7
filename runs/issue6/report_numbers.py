"""Every number REPORT.md quotes, recomputed from the committed records.

    .venv/bin/python runs/issue6/report_numbers.py [RUN_DIR]      # default data/results/imagenette

Seed noise (EfficientNet-B0 x 3 seeds at the study budget, and every tiny-vs-giant model over
its seeds) against the spread between the sweep's models: in total, and at equal FLOPs (the
residual of a straight line of top-1 against log2 FLOPs, which is what the frontier and the
dial analysis look at). Then the study's tables, printed as they are.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.sweep import load_results

ROOT = Path(__file__).resolve().parents[2]
run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "results" / "imagenette"
pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)


def section(title):
    print(f"\n## {title}")


res = load_results(run / "sweep")
done = res[res.status == "done"]
print(f"run: {run}\nsweep: {len(done)}/{len(res)} trials done, {int((res.status == 'failed').sum())} failed; "
      f"code versions: {sorted(done.code_version.dropna().unique()) if 'code_version' in done else '?'}")

section("B0 seed noise at the study budget")
b0 = []
base = done[done.id == "base"]
if len(base):
    b0.append(("0 (sweep base trial)", float(base.top1.iloc[0]), float(base.time_s.iloc[0])))
for s in (1, 2):
    f = ROOT / "runs" / "issue6" / "budget" / f"b0_e5_seed{s}" / "result.json"
    if f.is_file():
        r = json.loads(f.read_text())
        b0.append((str(s), r["top1"], r["train_time_s"]))
for seed, top1, t in b0:
    print(f"seed {seed}: top-1 {top1:.2f}  ({t / 60:.1f} min)")
b0_std = float(np.std([t for _, t, _ in b0], ddof=1)) if len(b0) > 1 else float("nan")
if b0:
    print(f"B0: mean {np.mean([t for _, t, _ in b0]):.2f}, std {b0_std:.2f} over {len(b0)} seeds")

section("spread between the sweep's models")
rnd = done[done.kind == "random"]
if len(rnd) > 2:
    x, y = np.log2(rnd.flops.to_numpy(float)), rnd.top1.to_numpy(float)
    slope, icpt = np.polyfit(x, y, 1)
    resid = y - (slope * x + icpt)
    print(f"{len(rnd)} random models: top-1 {y.min():.1f}..{y.max():.1f}, std {y.std(ddof=1):.2f}; "
          f"{slope:.2f} points per doubling of FLOPs; std at equal FLOPs (residual) {resid.std(ddof=2):.2f}")
    if b0_std == b0_std:
        print(f"B0 seed std / residual std = {b0_std / resid.std(ddof=2):.2f}")
    print(f"sweep time: {done.time_s.sum() / 3600:.2f} core-hours ({len(done)} trials)")

tvg_root = run / "tiny_vs_giant"
if tvg_root.is_dir():
    section("tiny vs giant: seed noise of every model")
    frames = [load_results(d).assign(seed=int(d.name[4:])) for d in sorted(tvg_root.glob("seed*"))]
    tvg = pd.concat(frames, ignore_index=True)
    tvg = tvg[tvg.status == "done"]
    per = tvg.groupby("id").top1.agg(["mean", "std", "count"])
    print(per.round(2).to_string())
    print(f"median per-model seed std: {per['std'].median():.2f}")

for name in ("dial_importance", "frontier", "tiny_formula_vs_tinynet_vs_giant", "tiny_vs_giant"):
    f = run / "tables" / f"{name}.csv"
    if f.is_file():
        section(f"table {name} ({f.relative_to(ROOT) if f.is_relative_to(ROOT) else f})")
        print(pd.read_csv(f).round(3).to_string(index=False))

if tvg_root.is_dir():
    section("tiny vs giant: paired gains (same seed, same level), mean +- std over seeds, 95% t-interval")
    from scipy import stats

    tvg["level"] = tvg.id.str.extract(r"_m(\d+)$")[0].astype(int)
    tvg["family"] = tvg.id.str.extract(r"^(\w+?)_m")[0]
    wide = tvg.pivot_table(index=["level", "seed"], columns="family", values="top1")

    def t_interval(g):
        """Mean, sem and the 95 % t-interval's half-width of the paired gains ``g``."""
        sem = g.std(ddof=1) / np.sqrt(len(g))
        return g.mean(), sem, stats.t.ppf(0.975, len(g) - 1) * sem

    for fam in [f for f in ("tiny", "ours") if f in wide]:
        for level, sub in wide.groupby(level="level"):
            g = (sub[fam] - sub["giant"]).dropna()
            if len(g) > 1:
                mean, _, half = t_interval(g)
                print(f"{fam:>4} - giant, level {level}: {mean:+.2f} +- {g.std(ddof=1):.2f} "
                      f"(95% CI {mean - half:+.2f}..{mean + half:+.2f}, {len(g)} seeds)")
        g = (wide[fam] - wide["giant"]).dropna()
        if len(g) > 1:
            mean, sem, half = t_interval(g)
            print(f"{fam:>4} - giant, all levels: {mean:+.2f} +- {sem:.2f} (sem; 95% CI "
                  f"{mean - half:+.2f}..{mean + half:+.2f}), {int((g > 0).sum())}/{len(g)} pairs positive")

    section("tiny vs giant: REPORT's table (top-1 mean +- std over seeds, input px)")
    agg = tvg.groupby(["level", "family"]).agg(top1=("top1", "mean"), std=("top1", "std"), n=("top1", "size"),
                                               px=("resolution", "first"), flops=("flops", "first"),
                                               c=("flops_ratio", "first"))
    fams = [f for f in ("giant", "tiny", "ours") if f in agg.index.get_level_values("family")]
    print("| level (c) | MFLOPs | " + " | ".join(fams) + " |")
    for level, sub in agg.groupby(level="level"):
        sub = sub.droplevel("level")
        best = sub.top1.idxmax()
        cells = [f"{'**' if f == best else ''}{sub.top1[f]:.2f}{'**' if f == best else ''} +- {sub['std'][f]:.2f} "
                 f"({sub.px[f]}, n={sub.n[f]})" for f in fams]
        print(f"| {sub.c['giant']:.3g} | {sub.flops['giant'] / 1e6:.1f} | " + " | ".join(cells) + " |")

family_csv = run / "tables" / "tiny_formula_family.csv"
if family_csv.is_file():
    section("claim 3: fitted r(c), d(c) (GP mean +- std) against the released TinyNet dials")
    from rubik.models import get_model_spec

    fam = pd.read_csv(family_csv)
    rows = []
    for _, f in fam[fam.kind == "tiny"].iterrows():
        released = get_model_spec(f["name"]).twist
        row = {"model": f["name"], "c": f["target_c"]}
        for dial, value in (("r", released.resolution), ("d", released.depth)):
            gap = (value - f[dial]) / f[f"{dial}_std"]
            row |= {f"{dial} fitted": f"{f[dial]:.3f} +- {f[f'{dial}_std']:.3f}",
                    f"{dial} released": value, f"{dial} gap (std)": round(float(gap), 1)}
        row |= {"w solved": round(float(f["w"]), 3), "w released": released.width}
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    print("(gap: released minus fitted, in GP predictive standard deviations (the fitted noise included); "
          "|gap| > 2 means the released dial lies outside our fit's 95% predictive band)")
