"""Tables and figures of a DRNet experiment (``rubik drnet report DIR``), from its ``eval.json`` files only.

* ``summary.csv`` / ``summary.md``: one row per evaluated model and routing (test half): mean FLOPs per
  image, top-1 on select and test, and for DRNet the gain at equal FLOPs over the fixed-resolution
  curve (models trained alone), over its own classifier's fixed-resolution curve (same weights, each
  image at one resolution), and over random routing at the same resolution mix (permutation p-value);
* ``drnet_accuracy_flops.png``: top-1 (test) against mean FLOPs per image: the backbone trained alone
  at each candidate (the fixed-resolution curve), the multi-resolution-BN classifier at each candidate,
  DRNet at each FLOPs target and random routing at DRNet's mix;
* ``drnet_resolution_histogram.png``: the share of test images per resolution for each target, and per
  class for the middle target;
* ``drnet_examples.png`` (with ``data_root``): test images grouped by the resolution DRNet chose;
* ``seeds.md`` / ``seeds.json``: the cross-seed analysis registered in
  ``data/results/imagenette/drnet/ANALYSIS.md`` (``seed_summary``).

The fixed-resolution curve is interpolated linearly in FLOPs between neighbouring candidates: a
point on that line is reachable without a predictor (route that share of images, at random, to the
larger model), so it is the baseline a predictor has to beat at equal mean FLOPs.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..data import (DataConfig, DataError, class_name, list_classes, list_split, tensor_cache, unpack_correct,
                    val_split)
from ..errors import ConfigError
from ..rundir import atomic_write, atomic_write_json
from .settings import read_eval


#: where an experiment folder keeps each evaluated run's report
EVAL_GLOB = "seed*/*/eval.json"


def load_evals(out_dir) -> list[dict]:
    """Every ``eval.json`` under an experiment folder; a damaged one is a ConfigError naming it
    (``rubik.drnet.settings.read_eval``)."""
    return [read_eval(p) for p in sorted(Path(out_dir).glob(EVAL_GLOB))]


def data_matches(evals: list[dict], data_root) -> bool:
    """Whether ``data_root`` holds the images these evaluations scored: as many class folders and val images
    (the figures that show images or class names need the experiment's own data)."""
    if not evals or not data_root:
        return False
    _, labels = unpack_correct(evals[0]["fixed"][0]["correct"])
    try:
        classes = list_classes(Path(data_root))
        val = list_split(Path(data_root), "val", classes)     # the images the pipeline would read
    except (OSError, DataError):
        return False
    return len(classes) == int(labels.max()) + 1 and len(val) == len(labels)


def _se(p_percent: float, n: int) -> float:
    """Binomial standard error (points) of a top-1 of ``p_percent`` on ``n`` images."""
    p = p_percent / 100
    return 100 * math.sqrt(max(p * (1 - p), 1e-12) / n)


def fixed_curve(evals: list[dict], seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean FLOPs, top-1 test) of the separately trained fixed-resolution models of one seed, by FLOPs."""
    pts = sorted((e["fixed"][0]["mean_flops"]["test"], e["fixed"][0]["top1"]["test"]) for e in evals
                 if e["seed"] == seed and e["name"].startswith("fixed_"))
    if len(pts) < 2:
        return None
    f, t = map(np.array, zip(*pts))
    return f, t


def summary_rows(evals: list[dict]) -> list[dict]:
    rows = []
    for e in evals:
        n_test = len(val_split(unpack_correct(e["fixed"][0]["correct"])[1])["test"])
        kind = e["name"].split("_")[0]
        if kind in ("fixed", "multires"):
            for k, f in enumerate(e["fixed"]):
                rows.append({"seed": e["seed"], "model": e["name"], "routing": f"fixed {e['resolutions'][k]} px",
                             "mflops": f["mean_flops"]["test"] / 1e6, "top1_select": f["top1"]["select"],
                             "top1_test": f["top1"]["test"], "se_test": _se(f["top1"]["test"], n_test)})
            continue
        r = e["routed"]
        row = {"seed": e["seed"], "model": e["name"], "routing": "DRNet (predictor)",
               "mflops": r["mean_flops"]["test"] / 1e6, "top1_select": r["top1"]["select"],
               "top1_test": r["top1"]["test"], "se_test": _se(r["top1"]["test"], n_test),
               "share_per_resolution": "/".join(f"{h / max(sum(r['histogram_test']), 1):.2f}"
                                                for h in r["histogram_test"])}
        curve = fixed_curve(evals, e["seed"])
        if curve is not None and curve[0][0] <= r["mean_flops"]["test"] <= curve[0][-1]:
            row["gain_vs_fixed_curve"] = r["top1"]["test"] - float(np.interp(r["mean_flops"]["test"], *curve))
        own = sorted((f["mean_flops"]["test"], f["top1"]["test"]) for f in e["fixed"])   # same weights, each res alone
        f_own, t_own = map(np.array, zip(*own))
        if f_own[0] <= r["mean_flops"]["test"] <= f_own[-1]:
            row["gain_vs_own_fixed"] = r["top1"]["test"] - float(np.interp(r["mean_flops"]["test"], f_own, t_own))
        rnd = e["random"]
        row["random_top1_test_mean"] = rnd["top1_test_mean"]
        row["random_top1_test_std"] = rnd["top1_test_std"]
        row["gain_vs_random"] = r["top1"]["test"] - rnd["top1_test_mean"]
        row["p_random"] = (1 + sum(t >= r["top1"]["test"] for t in rnd["top1_test"])) / (1 + len(rnd["top1_test"]))
        rows.append(row)
        for k, f in enumerate(e["fixed"]):
            rows.append({"seed": e["seed"], "model": e["name"], "routing": f"fixed {e['resolutions'][k]} px",
                         "mflops": f["mean_flops"]["test"] / 1e6, "top1_select": f["top1"]["select"],
                         "top1_test": f["top1"]["test"], "se_test": _se(f["top1"]["test"], n_test)})
    return rows


#: DRNet's gain over ResNet-50 at about 10 % fewer FLOPs (data/paper/drnet.csv): the margin of the plan's
#: "does not reproduce" (data/results/imagenette/drnet/ANALYSIS.md)
PAPER_GAIN = 1.4


def _t_interval(values, ci: float) -> tuple[float, float, float, float]:
    """(mean, sd, low, high) of a Student-t interval over ``values`` (nan bounds with fewer than 2)."""
    v = np.asarray(values, float)
    mean = float(v.mean()) if len(v) else math.nan
    if len(v) < 2:
        return mean, math.nan, math.nan, math.nan
    from scipy import stats

    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + ci / 2, len(v) - 1)) * sd / math.sqrt(len(v))
    return mean, sd, mean - half, mean + half


def decide(low: float, high: float, margin: float | None = PAPER_GAIN,
           baseline: str = "the fixed-resolution curve") -> str:
    """The plan's words for an interval of a gain (points) over ``baseline``; ``margin`` None: no
    "does not reproduce" reading (the paper makes no claim against that baseline)."""
    if math.isnan(low):
        return "undecided (fewer than 2 seeds)"
    if low > 0:
        return f"DRNet above {baseline}"
    if high < 0:
        return f"DRNet below {baseline}"
    if margin is not None and high < margin:
        return f"the paper's gain (>= +{margin:g}) does not reproduce"
    return "undecided at this number of seeds"


def seed_summary(evals: list[dict], ci: float = 0.95) -> dict:
    """The three-seed analysis registered in ``data/results/imagenette/drnet/ANALYSIS.md``.

    Primary: per seed, the mean over targets of DRNet's gain over that seed's fixed-resolution curve;
    a Student-t interval over seeds. Secondary: per target, the gain over the curve and over random
    routing, t intervals Bonferroni-adjusted over the targets. Only seeds with every target's gain
    enter the primary."""
    rows = [r for r in summary_rows(evals) if r["routing"] == "DRNet (predictor)"]
    target = {(e["seed"], e["name"]): e["task"]["flops_target"] for e in evals if e["name"].startswith("joint_")}
    targets = sorted({target[r["seed"], r["model"]] for r in rows})
    by_seed: dict[int, dict[float, dict]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[target[r["seed"], r["model"]]] = r
    complete = sorted(s for s, per in by_seed.items()
                      if all(t in per and per[t].get("gain_vs_fixed_curve") is not None for t in targets))
    per_seed = {s: float(np.mean([by_seed[s][t]["gain_vs_fixed_curve"] for t in targets])) for s in complete}
    mean, sd, low, high = _t_interval(list(per_seed.values()), ci)
    primary = {"estimand": "mean over targets of DRNet's gain over the fixed-resolution curve (points)",
               "seeds": complete, "per_seed": per_seed, "mean": mean, "sd": sd, "ci": ci, "low": low,
               "high": high, "decision": decide(low, high)}
    adjusted = 1 - (1 - ci) / max(len(targets), 1)
    secondary = []
    for t in targets:
        for key, what in (("gain_vs_fixed_curve", "vs fixed curve"), ("gain_vs_random", "vs random routing")):
            vals = {s: per[t][key] for s, per in sorted(by_seed.items()) if t in per and per[t].get(key) is not None}
            m, d, lo, hi = _t_interval(list(vals.values()), adjusted)
            secondary.append({"target": t, "comparison": what, "seeds": sorted(vals), "per_seed": vals, "mean": m,
                              "sd": d, "ci": adjusted, "low": lo, "high": hi,
                              "decision": decide(lo, hi, None, "random routing") if key == "gain_vs_random"
                              else decide(lo, hi)})
    return {"primary": primary, "secondary": secondary, "targets": targets}


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def seed_summary_markdown(summary: dict) -> str:
    def f(x, sign=True):
        return "" if _missing(x) else f"{x:+.2f}" if sign else f"{x:.2f}"

    def spread(r, interval: bool):   # an sd and an interval need two seeds: say so instead of "sd , [, ]"
        if _missing(r["sd"]):
            return f"n/a ({len(r['seeds'])} seed{'s' * (len(r['seeds']) != 1)})"
        return f"[{f(r['low'])}, {f(r['high'])}]" if interval else f(r["sd"], False)

    p = summary["primary"]
    sd_ci = (f"sd and t interval {spread(p, False)}" if _missing(p["sd"])
             else f"sd {f(p['sd'], False)}, {p['ci']:.0%} t interval {spread(p, True)}")
    out = [f"Primary ({p['estimand']}), seeds {p['seeds']}: per seed "
           + ", ".join(f"{s}: {f(v)}" for s, v in p["per_seed"].items())
           + f"; mean {f(p['mean'])}, {sd_ci}: **{p['decision']}**.", "",
           "| target | comparison | seeds | per seed | mean | sd | interval | level | reading |",
           "|---|---|---|---|---:|---:|---|---:|---|"]
    for r in summary["secondary"]:
        out.append(f"| {r['target']:g} | {r['comparison']} | {len(r['seeds'])} | "
                   + " / ".join(f(v) for v in r["per_seed"].values())
                   + f" | {f(r['mean'])} | {spread(r, False)} | {spread(r, True)} | {r['ci']:.2%} "
                   + f"| {r['decision']} |")
    return "\n".join(out) + "\n"


def eval_table(report: dict, source: str = "") -> str:
    """``rubik drnet eval``'s text: the headline (DRNet's routed top-1 and mean FLOPs per image), then one
    row per routing (DRNet, random routing at its resolution mix, each candidate alone) and the latency;
    ``--json`` prints the full report instead."""
    def mf(x):
        return f"{x / 1e6:.2f}"

    ref = report.get("reference_flops")
    lines = []
    r = report.get("routed")
    if r:
        share = f" ({100 * r['mean_flops']['test'] / ref:.0f} % of the {mf(ref)} M reference)" if ref else ""
        lines.append(f"DRNet{' ' + source if source else ''}: top-1 {r['top1']['test']:.2f} % on the test half "
                     f"({r['top1']['all']:.2f} % on all val images) at {mf(r['mean_flops']['test'])} MFLOPs per "
                     f"image{share}")
    else:
        lines.append(f"{source or 'model'}: no predictor (a multi-resolution or fixed model): each candidate alone")
    rows = [("routing", "top-1 test", "top-1 all", "MFLOPs/img", "test images per resolution")]
    if r:
        rows.append(("DRNet (predictor)", f"{r['top1']['test']:.2f}", f"{r['top1']['all']:.2f}",
                     mf(r["mean_flops"]["test"]), "/".join(str(h) for h in r["histogram_test"])))
    rnd = report.get("random")
    if rnd:
        rows.append((f"random, same mix ({rnd['n']}x)", f"{rnd['top1_test_mean']:.2f} +- {rnd['top1_test_std']:.2f}",
                     "", mf(rnd["mean_flops_test"]) if rnd.get("mean_flops_test") is not None else "", ""))
    for px, fx in zip(report["resolutions"], report["fixed"]):
        rows.append((f"fixed {px} px", f"{fx['top1']['test']:.2f}", f"{fx['top1']['all']:.2f}",
                     mf(fx["mean_flops"]["test"]), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["", *("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)]
    lat = report.get("latency")
    if lat:
        lines.append("")
        lines.append("latency (ms, batch 1, 1 CPU thread): classifier " + " / ".join(
            f"{px} px {ms:.2f}" for px, ms in zip(report["resolutions"], lat["classifier_ms"]))
            + (f", predictor {lat['predictor_ms']:.2f}" if lat.get("predictor_ms") is not None else "")
            + (f", routed mean {lat['routed_mean_ms']:.2f}" if lat.get("routed_mean_ms") is not None else ""))
    lines.append("(--json: the full report; --out FILE: save it)")
    return "\n".join(lines)


def _plot_seed_means(ax, evals: list[dict], n_seeds: int) -> None:
    """Means over seeds (± one sd over seeds) of the fixed curve, the multi-resolution-BN curve, DRNet
    per target and random routing at DRNet's mix."""
    def stats_of(points):
        a = np.array(points, float)
        return a.mean(0), (a.std(0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1:]))

    fixed = {}
    for e in evals:
        if e["name"].startswith("fixed_"):
            f = e["fixed"][0]
            fixed.setdefault(e["name"], []).append((f["mean_flops"]["test"] / 1e6, f["top1"]["test"]))
    if fixed:
        rows = sorted((stats_of(v) for v in fixed.values()), key=lambda ms: ms[0][0])
        ax.errorbar([m[0] for m, _ in rows], [m[1] for m, _ in rows], yerr=[d[1] for _, d in rows], fmt="o-",
                    color="black", lw=2, capsize=3, label=f"trained alone at each resolution (mean of {n_seeds} seeds)")
    multi = [[(x["mean_flops"]["test"] / 1e6, x["top1"]["test"]) for x in e["fixed"]] for e in evals
             if e["name"] == "multires"]
    if multi:
        m, d = stats_of(multi)
        ax.errorbar(m[:, 0], m[:, 1], yerr=d[:, 1], fmt="s--", color="tab:blue", capsize=3,
                    label="multi-resolution BN, each resolution (mean)")
    ax.margins(x=0.12)   # room for the leftmost target's label
    by_target = {}
    for e in evals:
        if e["name"].startswith("joint_"):
            r, rnd = e["routed"], e["random"]
            by_target.setdefault(e["task"]["flops_target"], []).append(
                (r["mean_flops"]["test"] / 1e6, r["top1"]["test"], rnd["mean_flops_test"] / 1e6, rnd["top1_test_mean"]))
    for k, (t, pts) in enumerate(sorted(by_target.items())):
        m, d = stats_of(pts)
        ax.errorbar(m[0], m[1], xerr=d[0], yerr=d[1], fmt="*", ms=15, color="tab:red", capsize=3,
                    label="DRNet, predictor routes (mean)" if k == 0 else None)
        ax.annotate(f"target {t:g} ({len(pts)})", (m[0], m[1]), textcoords="offset points",   # first to the left:
                    xytext=(-8, -16) if k == 0 else (8, -13), ha="right" if k == 0 else "left",  # the next is close
                    fontsize=8, color="tab:red")
        ax.errorbar(m[2], m[3], yerr=d[3], fmt="x", color="tab:orange", capsize=3,
                    label="random routing, same mix (mean)" if k == 0 else None)


def plot_accuracy_flops(evals: list[dict], path) -> None:
    """One seed: every curve as measured. Several: each seed faint, and the mean over seeds on top
    (error bars: one standard deviation over seeds, in top-1 and, for DRNet, in mean FLOPs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    seeds = sorted({e["seed"] for e in evals})
    multi = len(seeds) > 1
    faint = dict(alpha=0.25) if multi else {}
    used = set()

    def lab(text):   # each kind once in the legend; single seeds unlabelled when means are drawn
        if multi or text in used:
            return None
        used.add(text)
        return text

    for seed in seeds:
        curve = fixed_curve(evals, seed)
        if curve is not None:
            ax.plot(curve[0] / 1e6, curve[1], "o-", color="black", label=lab("trained alone at each resolution"),
                    **faint)
        for e in evals:
            if e["seed"] != seed:
                continue
            if e["name"] == "multires":
                f = [x["mean_flops"]["test"] / 1e6 for x in e["fixed"]]
                t = [x["top1"]["test"] for x in e["fixed"]]
                ax.plot(f, t, "s--", color="tab:blue", label=lab("multi-resolution BN, each resolution"), **faint)
            elif e["name"].startswith("joint_"):
                r = e["routed"]
                ax.plot(r["mean_flops"]["test"] / 1e6, r["top1"]["test"], "*", ms=14 if not multi else 9,
                        color="tab:red", label=lab("DRNet (predictor routes)"), **faint)
                if multi:
                    continue
                ax.annotate(f"target {e['task']['flops_target']:g}", (r["mean_flops"]["test"] / 1e6, r["top1"]["test"]),
                            textcoords="offset points", xytext=(6, -10), fontsize=8, color="tab:red")
                ax.plot([x["mean_flops"]["test"] / 1e6 for x in e["fixed"]], [x["top1"]["test"] for x in e["fixed"]],
                        ".:", color="tab:red", alpha=0.5, label=lab("DRNet's classifier, each resolution alone"))
                rnd = e["random"]
                ax.errorbar(rnd["mean_flops_test"] / 1e6, rnd["top1_test_mean"], yerr=rnd["top1_test_std"], fmt="x",
                            color="tab:orange", capsize=3, label=lab("random routing, same mix"))
    if multi:
        _plot_seed_means(ax, evals, len(seeds))
    n_test = None
    if evals:
        n_test = len(val_split(unpack_correct(evals[0]["fixed"][0]["correct"])[1])["test"])
    ax.set_xlabel("mean FLOPs per image (M; predictor included)")
    ax.set_ylabel(f"top-1 (%), test half ({n_test} images)")
    shown = [s for s in seeds if fixed_curve(evals, s) is not None     # seeds with something drawn
             or any(e["seed"] == s and not e["name"].startswith("fixed_") for e in evals)]
    ax.set_title(f"DRNet vs fixed resolution, Imagenette (seed{'s' if len(shown) > 1 else ''} "
                 f"{', '.join(map(str, shown))})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_histograms(evals: list[dict], path, classes: list[str] | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    joints = sorted((e for e in evals if e["name"].startswith("joint_")),
                    key=lambda e: (e["task"]["flops_target"], e["seed"]))
    if not joints:
        return
    res = joints[0]["resolutions"]
    colors = plt.cm.viridis(np.linspace(0.15, 0.85, len(res)))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 2]})
    names = [f"{e['task']['flops_target']:g}\ns{e['seed']}" for e in joints]
    shares = np.array([np.array(e["routed"]["histogram_test"]) / max(sum(e["routed"]["histogram_test"]), 1)
                       for e in joints])
    bottom = np.zeros(len(joints))
    for k, px in enumerate(res):
        a.bar(names, shares[:, k], bottom=bottom, color=colors[k], label=f"{px} px")
        bottom += shares[:, k]
    a.set_ylabel("share of test images")
    a.set_xlabel("FLOPs target, seed")
    a.tick_params(axis="x", labelsize=8)
    a.set_title("chosen resolution per FLOPs target")
    a.legend(fontsize=8)
    mid = joints[len(joints) // 2]
    choice = np.array(mid["routed"]["choice"])
    _, labels = unpack_correct(mid["routed"]["correct"])
    test = val_split(labels)["test"]
    ncls = int(labels.max()) + 1
    per = np.array([np.bincount(choice[test][labels[test] == c], minlength=len(res)) for c in range(ncls)], float)
    per /= per.sum(1, keepdims=True).clip(min=1)
    bottom = np.zeros(ncls)
    xl = [class_name(c) for c in classes] if classes else [str(c) for c in range(ncls)]
    for k, px in enumerate(res):
        b.bar(xl, per[:, k], bottom=bottom, color=colors[k], label=f"{px} px")
        bottom += per[:, k]
    b.set_title(f"per class, target {mid['task']['flops_target']:g} (seed {mid['seed']}), test half")
    b.tick_params(axis="x", rotation=45, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_examples(e: dict, data_root, path, per_row: int = 8, seed: int = 0) -> None:
    """Test images (the eval crop at the backbone's input size) grouped by the resolution DRNet chose."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = DataConfig(**{**{k: v for k, v in (e["task"].get("data") or {}).items()}, "root": str(data_root),
                         "name": "imagenette", "workers": 1})
    va = tensor_cache(data, "val", max(e["resolutions"]), progress=False)
    choice = np.array(e["routed"]["choice"])
    if len(va["x"]) != len(choice):
        raise ValueError(f"{data_root} has {len(va['x'])} val images, the evaluation {len(choice)}: another data set")
    correct, labels = unpack_correct(e["routed"]["correct"])
    test = val_split(labels)["test"]
    rng = np.random.default_rng(seed)
    K = len(e["resolutions"])
    fig, axes = plt.subplots(K, per_row, figsize=(per_row * 1.3, K * 1.5))
    for k in range(K):
        idx = test[choice[test] == k]
        pick = rng.choice(idx, size=min(per_row, len(idx)), replace=False) if len(idx) else []
        for j in range(per_row):
            ax = axes[k, j]
            ax.axis("off")
            if j < len(pick):
                i = int(pick[j])
                ax.imshow(va["x"][i].permute(1, 2, 0).numpy())
                ax.set_title(("" if correct[i] else "x ") + class_name(va["classes"][labels[i]])[:16], fontsize=6,
                             color="black" if correct[i] else "tab:red")
        axes[k, 0].text(-0.15, 0.5, f"{e['resolutions'][k]} px\n{len(idx)} imgs", transform=axes[k, 0].transAxes,
                        ha="right", va="center", fontsize=8)
    fig.suptitle(f"test images by DRNet's choice (target {e['task']['flops_target']:g}, seed {e['seed']}); "
                 "red x: misclassified", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _markdown(rows: list[dict]) -> str:
    cols = ["seed", "model", "routing", "mflops", "top1_select", "top1_test", "se_test", "share_per_resolution",
            "gain_vs_fixed_curve", "gain_vs_own_fixed", "random_top1_test_mean", "random_top1_test_std", "gain_vs_random", "p_random"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join("" if r.get(c) is None else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])
                                     for c in cols) + " |")
    return "\n".join(out) + "\n"


def write_report(exp_dir, out_dir, *, data_root=None) -> dict:
    """Write the summary table and figures of ``exp_dir`` into ``out_dir``; returns the file list and rows."""
    evals = load_evals(exp_dir)
    if data_root and evals and not data_matches(evals, data_root):
        _, labels = unpack_correct(evals[0]["fixed"][0]["correct"])
        raise ConfigError(f"{data_root}: not the images this experiment evaluated ({int(labels.max()) + 1} classes, "
                          f"{len(labels)} val images); leave --data out, or give the experiment's data")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(evals)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write(out / "summary.csv", lambda f: f.write(buf.getvalue()), binary=False)
    atomic_write(out / "summary.md", lambda f: f.write(_markdown(rows)), binary=False)
    files = ["summary.csv", "summary.md"]
    if evals:
        plot_accuracy_flops(evals, out / "drnet_accuracy_flops.png")
        files.append("drnet_accuracy_flops.png")
    joints = sorted((e for e in evals if e["name"].startswith("joint_")), key=lambda e: (e["task"]["flops_target"],
                                                                                          e["seed"]))
    if joints:
        classes = None
        if data_root:
            classes = list_classes(Path(data_root))
        plot_histograms(evals, out / "drnet_resolution_histogram.png", classes)
        files.append("drnet_resolution_histogram.png")
        if data_root:
            plot_examples(joints[len(joints) // 2], data_root, out / "drnet_examples.png")
            files.append("drnet_examples.png")
    atomic_write_json(out / "summary.json", {"rows": rows})
    seeds = seed_summary(evals)
    atomic_write(out / "seeds.md", lambda f: f.write(seed_summary_markdown(seeds)), binary=False)
    atomic_write_json(out / "seeds.json", seeds)   # strict JSON: NaN -> null
    files += ["seeds.md", "seeds.json"]
    return {"files": files, "rows": rows, "seeds": seeds}


__all__ = ["write_report", "summary_rows", "fixed_curve", "seed_summary", "decide", "data_matches"]
