"""Every number REPORT.md quotes, recomputed from the committed records.

    .venv/bin/python runs/imagenette_study/report_numbers.py [RUN_DIR]      # default data/results/imagenette

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

from rubik.frontier import frontier_bias, joint_dial_effects, pareto_frontier
from rubik.report import add_blocks, depth_floor_summary, family_table, paired_gains, t_interval
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
    f = ROOT / "runs" / "imagenette_study" / "budget" / f"b0_e5_seed{s}" / "result.json"
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

    section("depth in blocks: where the floor binds")
    rnd = add_blocks(rnd)
    front = pareto_frontier(done, kinds=("random",))
    floor = depth_floor_summary(rnd, frontier=front)
    print(f"B0 has 16 blocks; a twisted stage keeps max(1, round(n d)) of its n, so every d <= "
          f"{floor['floor_d_max']:.3f} builds the same {floor['floor_blocks']}-block network")
    print(f"random models at the floor: {floor['models_at_floor']}/{floor['models']} (d sampled "
          f"{floor['d_range_at_floor'][0]:.3f}..{floor['d_range_at_floor'][1]:.3f}); frontier: "
          f"{floor['frontier_at_floor']}/{floor['frontier_models']} at the floor, blocks {floor['frontier_blocks']}")
    print("blocks of the random models:", rnd.blocks.value_counts().sort_index().to_dict())

    section("claim 1, jointly: top1 ~ log2 r + log2 depth + log2 FLOPs (width implied), 100 random models, "
            "95% bootstrap over models (1000)")
    for depth in ("d", "blocks"):
        j = joint_dial_effects(rnd, d_col=depth, n_boot=1000, seed=0)
        print(f"depth as {depth}: n {j.n[0]}, R2 {j.r2[0]:.3f}, residual std {j.resid_std[0]:.2f}, "
              f"max VIF {j.max_vif[0]:.2f}")
        for row in j.itertuples():
            print(f"  {row.effect:>16}: {row.value:+.2f} [{row.lo:+.2f}, {row.hi:+.2f}]  {row.meaning}")

    section("winner's curse: the frontier at the giant models' FLOPs, re-noised by the B0 seed std "
            "(interpolated in log FLOPs between frontier models)")
    giant = done[done.kind == "giant"].sort_values("flops")
    wc = frontier_bias(done, giant.flops.to_numpy(), noise_std=b0_std, n_rep=2000, seed=0)
    wc.insert(0, "id", giant.id.to_numpy())
    wc["giant_top1"] = giant.top1.to_numpy()
    wc["gap"] = wc.frontier - wc.giant_top1
    wc["gap_corrected"] = wc.gap - wc.bias
    print(wc.round(2).to_string(index=False))
    print(f"noise std {b0_std:.2f}; mean bias {wc.bias.mean():.2f}; gap {wc.gap.min():.1f}..{wc.gap.max():.1f} -> "
          f"{wc.gap_corrected.min():.1f}..{wc.gap_corrected.max():.1f} after subtracting it")

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
    tvg["level"] = tvg.id.str.extract(r"_m(\d+)$")[0].astype(int)
    tvg["family"] = tvg.id.str.extract(r"^(\w+?)_m")[0]
    wide = tvg.pivot_table(index=["level", "seed"], columns="family", values="top1")

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

    section("tiny vs giant: parameters, blocks and CPU latency of each model (1 image, 1 thread, median ms; "
            "measured now, on this machine)")
    tab = add_blocks(family_table(tvg, latency=True, num_classes=10))
    tab["params vs giant"] = tab.params_m / tab.level.map(tab[tab.family == "giant"].set_index("level").params_m) - 1
    print(tab.round(3).to_string(index=False))

family_csv = run / "tables" / "tiny_formula_family.csv"
if family_csv.is_file():
    section("claim 3: fitted r(c), d(c) (GP mean +- std) against the released TinyNet dials")
    from rubik.models import get_model_spec
    from rubik.study import total_blocks

    fam = pd.read_csv(family_csv)
    rows = []
    for _, f in fam[fam.kind == "tiny"].iterrows():
        released = get_model_spec(f["name"]).twist
        row = {"model": f["name"], "c": f["target_c"]}
        for dial, value in (("r", released.resolution), ("d", released.depth)):
            gap = (value - f[dial]) / f[f"{dial}_std"]
            row |= {f"{dial} fitted": f"{f[dial]:.3f} +- {f[f'{dial}_std']:.3f}",
                    f"{dial} released": value, f"{dial} gap (std)": round(float(gap), 1)}
        row |= {"w solved": round(float(f["w"]), 3), "w released": released.width,
                "blocks fitted": total_blocks("efficientnet_b0", f["d"]),
                "blocks released": total_blocks("efficientnet_b0", released.depth)}
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    print("(gap: released minus fitted, in GP predictive standard deviations (the fitted noise included); "
          "|gap| > 2 means the released dial lies outside our fit's 95% predictive band)")
