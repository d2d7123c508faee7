"""Tiny vs giant: the paper's comparison of the tiny formula (TinyNet dials, or our fitted formula)
with the inversed giant formula B^-phi at equal FLOPs, one level per phi = 1..4.

``tiny_vs_giant_trials`` designs the trials (``rubik.sweep.init_sweep`` samples), ``run_seeded_sweeps``
trains them once per seed, ``summarize_tiny_vs_giant`` gives the mean and spread per level;
``reference_dials`` and ``compare_families`` set the released TinyNets, the giant models and our
formula's models side by side (dials, px, params, FLOPs).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.cube import Twist, giant_twist
from rubik.launcher import run_sweep
from rubik.models import Arch, get_model_spec
from rubik.paper import TINYNETS, pretty, registry_table
from rubik.sampling import arch_columns
from rubik.sweep import init_sweep, load_results

# the paper pairs the inversed giant formula B^-phi with the TinyNet of the same FLOPs level
GIANT_PAIRS = {1: "tinynet_b", 2: "tinynet_c", 3: "tinynet_d", 4: "tinynet_e"}
#: ``tiny_vs_giant_trials``'s ``tiny`` (the contenders) and ``levels`` (where each level sits)
TVG_TINY = ("released", "formula", "both")
TVG_LEVELS = ("tinynet", "c")


TVG_LABELS = {"tiny": "TinyNet dials (paper)", "ours": "our fitted formula", "giant": "inversed giant formula"}
"""Legend labels of the tiny-vs-giant families (``tiny_vs_giant_trials``'s ``family`` column)."""


def reference_dials(base_resolution=None, num_classes: int = 1000, phis=(1, 2, 3, 4)):
    """Released TinyNet-A..E and the inversed giant B^-phi: name, family, r, d, w, c, FLOPs
    (at the family's own resolution, 224 px, by default: small proxy resolutions cannot
    build TinyNet-E, and the FLOPs ratio c hardly depends on the base resolution)."""
    from rubik.flops import analytic_flops   # torch (rubik.flops): this module loads none at import

    reg = registry_table(list(TINYNETS), base_resolution=base_resolution, num_classes=num_classes)
    tiny = pd.DataFrame(dict(name=[n[-1].upper() for n in reg.name], family="TinyNet (released)", r=reg.r,
                             d=reg.d, w=reg.w, c=reg.flops_ratio, flops=reg.flops))
    f0 = analytic_flops("efficientnet_b0", (1.0, 1.0, 1.0), base_resolution=base_resolution, num_classes=num_classes)
    g = []
    for p in phis:
        t = giant_twist(-p)
        f = analytic_flops("efficientnet_b0", t, base_resolution=base_resolution, num_classes=num_classes)
        g.append(dict(name=f"B^-{p}", family="inversed giant formula", r=t.resolution, d=t.depth, w=t.width,
                      c=f / f0, flops=f))
    return pd.concat([tiny, pd.DataFrame(g)], ignore_index=True)


def compare_families(derived, num_classes: int = 1000):
    """Per FLOPs level: our tiny-formula model, the released TinyNet and the inversed
    giant model at the same FLOPs ratio (dials, px, params, FLOPs).

    ``derived``: ``rubik.formula.derive_family(formula, {"tinynet_a": c_A, ...},
    base_resolution=224)`` (tiny rows named after the TinyNet whose FLOPs level they
    target; its giant rows have phi solved for the real FLOPs, ``matched_giant_phi``)."""
    ref = registry_table(list(TINYNETS), num_classes=num_classes).set_index("name")
    tiny, giant = derived[derived["kind"] == "tiny"], derived[derived["kind"] == "giant"]

    def row(level, model, kind, r, d, w, px, params, flops, c, top1=np.nan):
        return dict(level=level, model=model, kind=kind, r=r, d=d, w=w, resolution=px,
                    params_m=params / 1e6, flops_m=flops / 1e6, c=c, paper_top1=top1)

    rows = []
    for _, t in tiny.iterrows():
        level = f"{pretty(t['name'])} level (c={t['target_c']:.3g})"
        rows.append(row(level, f"ours @ {pretty(t['name'])}", "tiny formula (ours)", t.r, t.d, t.w,
                        t.get("resolution"), t.get("params", np.nan), t.get("flops", np.nan), t.get("flops_ratio")))
        if t["name"] in ref.index:
            x = ref.loc[t["name"]]
            rows.append(row(level, pretty(t["name"]), "TinyNet (released)", x.r, x.d, x.w, x.resolution, x.params,
                            x.flops, x.flops_ratio, x.paper_top1))
        for _, g in giant[np.isclose(giant["target_c"], t["target_c"])].iterrows():
            rows.append(row(level, f"B^{g['phi']:.2f}", "inversed giant formula (FLOPs-matched phi)",
                            g.r, g.d, g.w, g.get("resolution"), g.get("params", np.nan), g.get("flops", np.nan),
                            g.get("flops_ratio")))
    return pd.DataFrame(rows)


def tiny_vs_giant_trials(phis, *, tiny="released", formula=None, match_flops: bool = True, levels="tinynet",
                         base="efficientnet_b0", base_resolution=None, num_classes: int = 1000):
    """Trials for the tiny-vs-giant comparison, one FLOPs level per ``phi`` in ``phis``.

    Level ``phi`` is the paper's pair B^-phi / TinyNet-{B,C,D,E} (phi = 1..4). Its FLOPs ratio:

    * ``levels="tinynet"``: the released TinyNet's own ratio in this setting (at a proxy's small
      base resolution that is not 2^-phi: TinyNet-B is c = 0.64 at 64 px, 10 classes);
    * ``levels="c"``: ``c = 2^-phi`` (0.5, 0.25, 0.125, 0.0625); the TinyNet contender then keeps
      the released r and d and solves w for c (the paper's own recipe: r, d from the formula, w
      from the budget). With ``match_flops`` the giant model nearest to c comes first and every
      contender is put at *its* FLOPs: the giant family is a coarse staircase at small inputs
      (at 64 px the giant nearest c = 0.125 has c = 0.165), and equal FLOPs is the comparison.

    Contenders (``tiny``): ``"released"`` the TinyNet dials (family ``tiny``), ``"formula"`` our
    fitted formula at the level's c (family ``tiny``; needs ``formula``), ``"both"`` the two
    (families ``tiny`` and ``ours``). The giant model is the inversed giant formula at the phi that
    gives the first contender's FLOPs (``match_flops``, default: the paper compares at equal
    FLOPs) or at the nominal ``-phi``. Rows are ``rubik.sweep.init_sweep`` samples, each with its
    ``arch`` (plus ``family``, ``level``, ``name``, ``phi``)."""
    from rubik.flops import analytic_flops   # torch (rubik.flops): this module loads none at import

    reference = Arch(base, base_resolution=base_resolution)
    br = reference.base_resolution
    kw = dict(num_classes=num_classes, base_resolution=br)
    f0 = reference.flops(num_classes)
    if tiny not in TVG_TINY:
        raise ValueError(f"tvg_tiny must be one of {', '.join(TVG_TINY)}, got {tiny!r}")
    if tiny in ("formula", "both") and formula is None:
        raise ValueError(f"tvg_tiny={tiny!r} needs the fitted tiny formula (run notebook 04 first)")
    from rubik.formula import matched_giant_phi   # sklearn and scipy: only the giant levels need them

    def arch_of(name, twist, phi):
        try:
            return reference.replace(twist=twist)
        except ValueError as e:   # e.g. an input below rubik.cube.MIN_IMAGE_SIZE
            raise ValueError(f"{name}: {e} at base_resolution {br}; raise base_resolution or drop phi={phi} "
                             "from tvg_phis") from None

    def giant_phi_at(c, phi, what):
        try:
            return matched_giant_phi(base, min(1.0, c), **kw)
        except ValueError as e:
            raise ValueError(f"level phi={phi} ({what}): {e}; raise base_resolution or drop it from "
                             "tvg_phis") from None

    rows = []
    for phi in phis:
        phi = int(phi)
        tn = GIANT_PAIRS.get(phi)
        if tn is None:
            raise ValueError(f"tvg_phis: no TinyNet level for phi={phi} (have {sorted(GIANT_PAIRS)})")
        released = Twist.from_any(get_model_spec(tn).twist)
        arch_of(pretty(tn), released, phi)
        if levels == "tinynet":
            c, tiny_name = analytic_flops(base, released, **kw) / f0, pretty(tn)
        elif levels == "c":
            from rubik.flops import solve_width   # torch, as above

            c = 2.0 ** -phi
            if match_flops:   # the contenders go to the FLOPs of the giant nearest to c
                c = analytic_flops(base, giant_twist(giant_phi_at(c, phi, f"c={c:g}")), **kw) / f0
            released = Twist(released.resolution, released.depth,
                             solve_width(base, released.resolution, released.depth, c * f0, **kw))
            tiny_name = f"{pretty(tn)} r, d (w solved)"
        else:
            raise ValueError(f"tvg levels must be one of {', '.join(TVG_LEVELS)}, got {levels!r}")
        # contenders at this level: (family, twist, name, id); the giant is matched to the first one
        contenders = []
        if tiny in ("released", "both"):
            contenders.append(("tiny", released, tiny_name, f"tiny_m{phi}"))
        if tiny in ("formula", "both"):
            family, tid = ("ours", f"ours_m{phi}") if tiny == "both" else ("tiny", f"tiny_m{phi}")
            contenders.append((family, Twist.from_any(formula.twist(min(c, 1.0))), f"ours @ c={c:.3g}", tid))
        for _, t, tname, _ in contenders:   # before matching: a clearer error than the FLOPs count's
            arch_of(tname, t, phi)
        t, tname = contenders[0][1], contenders[0][2]
        gphi = giant_phi_at(analytic_flops(base, t, **kw) / f0, phi, tname) if match_flops else float(-phi)
        g = giant_twist(gphi)
        for family, twist, name, tid, p in [("giant", g, f"B^{gphi:.2f}", f"giant_m{phi}", gphi)] + \
                [(fam, tw, nm, i, float("nan")) for fam, tw, nm, i in contenders]:
            cols = arch_columns(arch_of(name, twist, phi), num_classes=num_classes, base_flops=f0)
            rows.append(dict(id=tid, kind=family, family=family, level=phi, name=name, phi=p,
                             **{k: cols[k] for k in ("base", "base_resolution", "r", "d", "w", "resolution", "params",
                                                     "flops", "flops_ratio", "arch")}))
    return pd.DataFrame(rows)


def run_seeded_sweeps(root, trials, template, seeds, *, processes: int | None = 1, threads=None, progress=True,
                      trial_checkpoints: bool = False):
    """One sweep per seed under ``root/seed<k>`` (resumable); all results with a ``seed`` column.
    ``processes`` None: one per GPU present (``rubik.launcher.run_sweep``); ``trial_checkpoints``: each
    trial checkpoints every epoch and a killed one resumes (``rubik.sweep.init_sweep``)."""


    frames = []
    for s in seeds:
        tmpl = dataclasses.replace(template, seed=int(s))
        d = Path(root) / f"seed{s}"
        init_sweep(d, trials, tmpl, trial_checkpoints=trial_checkpoints)
        print(f"seed {s}: {d}")
        run_sweep(d, processes=processes, threads=threads, progress=progress)
        frames.append(load_results(d).assign(seed=int(s)))
    return pd.concat(frames, ignore_index=True)


def summarize_tiny_vs_giant(runs, metric="top1"):
    """Mean and std over seeds per FLOPs level: TinyNet-like vs inversed giant, and the gain."""
    d = runs[runs["status"] == "done"]
    rows = []
    for level, sub in d.groupby("level"):
        row = {"level": f"phi=-{level}"}
        for fam in ("tiny", "ours", "giant"):
            f = sub[sub["family"] == fam]
            if not len(f):
                continue
            row[f"{fam}_model"] = f["name"].iloc[0]
            row[f"{fam}_mflops"] = float(f["flops"].iloc[0]) / 1e6
            row[f"{fam}_px"] = int(f["resolution"].iloc[0])
            row[f"{fam}_{metric}"] = float(f[metric].mean())
            row[f"{fam}_std"] = float(f[metric].std()) if len(f) > 1 else float("nan")
            row["seeds"] = int(f["seed"].nunique())
        for fam, gain in (("tiny", "gain"), ("ours", "ours_gain")):   # accuracy points over the giant
            if f"{fam}_{metric}" in row and f"giant_{metric}" in row:
                row[gain] = row[f"{fam}_{metric}"] - row[f"giant_{metric}"]
        rows.append(row)
    return pd.DataFrame(rows)
