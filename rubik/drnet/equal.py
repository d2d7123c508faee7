"""DRNet against the fixed-resolution curve at equal total training (issue 34), and how much its
predictor actually routes: the analysis fixed in ``data/results/imagenette/drnet_equal/ANALYSIS.md``.

The registered comparison (``rubik.drnet.report.seed_summary``) set DRNet (5 epochs multi-resolution
+ 2 joint) against backbones trained alone for 5 epochs. Here the same estimand is read at equal
totals, both ways: **Q7**, the committed DRNet runs against backbones trained 7 epochs (``fixed7``),
and **Q5**, DRNet trained 3 + 2 epochs (``drnet5``) against the committed 5-epoch backbones. Each is
``seed_summary`` of a list of evaluations that takes its DRNet runs from one experiment folder and
its fixed runs from another; nothing about the estimand changes.

    python -m rubik.drnet.equal data/results/imagenette/drnet data/results/imagenette/drnet_equal --out DIR
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..rundir import atomic_write, atomic_write_json
from .report import load_evals, seed_summary

#: the two-primary plan reads each at the Bonferroni-adjusted level (ANALYSIS.md)
CI = 0.975


def combine(drnet_dir, fixed_dir) -> list[dict]:
    """DRNet's ``joint_*`` evaluations from ``drnet_dir`` with the ``fixed_*`` ones from ``fixed_dir``."""
    joint = [e for e in load_evals(drnet_dir) if e["name"].startswith("joint_")]
    fixed = [e for e in load_evals(fixed_dir) if e["name"].startswith("fixed_")]
    if not joint or not fixed:
        raise ValueError(f"need joint_* runs in {drnet_dir} ({len(joint)} found) and fixed_* runs in "
                         f"{fixed_dir} ({len(fixed)} found)")
    return joint + fixed


def routing_entropy(shares) -> float:
    """Entropy in bits of a resolution mix (0: one resolution for every image)."""
    total = float(sum(shares))
    ps = [s / total for s in shares if s > 0] if total > 0 else []
    return float(-sum(p * math.log2(p) for p in ps)) + 0.0


def routing_rows(evals: list[dict], label: str) -> list[dict]:
    """Per seed and FLOPs target: the share of test images per resolution and the routing entropy."""
    rows = []
    for e in evals:
        if not e["name"].startswith("joint_"):
            continue
        hist = e["routed"]["histogram_test"]
        rows.append({"runs": label, "seed": e["seed"], "target": e["task"]["flops_target"],
                     "shares": "/".join(f"{h / max(sum(hist), 1):.2f}" for h in hist),
                     "px": "/".join(str(r) for r in e["resolutions"]), "entropy_bits": routing_entropy(hist)})
    return sorted(rows, key=lambda r: (r["runs"], r["target"], r["seed"]))


def analyse(committed, equal) -> dict:
    """Q7, Q5 (``seed_summary`` at the 97.5 % level) and the routing table."""
    committed, equal = Path(committed), Path(equal)
    out = {"Q7: DRNet 5+2 epochs vs backbones trained 7": seed_summary(combine(committed, equal / "fixed7"), CI),
           "Q5: DRNet 3+2 epochs vs backbones trained 5": seed_summary(combine(equal / "drnet5", committed), CI)}
    out["routing"] = (routing_rows(load_evals(committed), "DRNet 5+2 (committed)")
                      + routing_rows(load_evals(equal / "drnet5"), "DRNet 3+2 (drnet5)"))
    return out


def markdown(result: dict) -> str:
    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2f}"

    lines = ["# DRNet at equal training (data/results/imagenette/drnet_equal/ANALYSIS.md)", ""]
    for name, s in result.items():
        if name == "routing":
            continue
        p = s["primary"]
        per = ", ".join(f"seed {k} {f(v)}" for k, v in p["per_seed"].items())
        lines += [f"## {name}", "",
                  f"**{f(p['mean'])} points, {p['ci'] * 100:g} % [{f(p['low'])}, {f(p['high'])}]** ({per}): "
                  f"{p['decision']}", "", "| target | comparison | mean | interval | decision |", "|---|---|---:|---|---|"]
        for r in s["secondary"]:
            lines.append(f"| {r['target']:g} | {r['comparison']} | {f(r['mean'])} | "
                         f"[{f(r['low'])}, {f(r['high'])}] ({r['ci'] * 100:.2f} %) | {r['decision']} |")
        lines.append("")
    lines += ["## The predictor's routing (test images)", "", "| runs | target | seed | px | shares | entropy (bits) |",
              "|---|---:|---:|---|---|---:|"]
    for r in result["routing"]:
        lines.append(f"| {r['runs']} | {r['target']:g} | {r['seed']} | {r['px']} | {r['shares']} | "
                     f"{r['entropy_bits']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rubik.drnet.equal", description=__doc__.split("\n\n")[0])
    ap.add_argument("committed", help="the registered experiment (DRNet 5+2, fixed 5): data/results/imagenette/drnet")
    ap.add_argument("equal", help="the folder holding fixed7/ and drnet5/")
    ap.add_argument("--out", default=None, help="write equal.md and equal.json here")
    args = ap.parse_args(argv)
    try:
        result = analyse(args.committed, args.equal)
    except (ValueError, OSError) as e:
        print(f"rubik.drnet.equal: error: {e}", file=sys.stderr)
        return 2
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "equal.md", lambda f: f.write(text), binary=False)
        atomic_write_json(out / "equal.json", json.loads(json.dumps(result, default=float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
