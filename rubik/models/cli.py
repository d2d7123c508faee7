"""``rubik models``: table of registered models with their dials, params and FLOPs vs the paper.

    rubik models                               # all registered models, analytic counts
    rubik models --filter 'tinynet_*' --measure  # also count with ptflops on the built model
    rubik models --base-resolution 64 --num-classes 100 --csv models.csv
"""
from __future__ import annotations

import csv
import sys

from rubik.models import Arch, create_model, get_model_spec, list_models


def add_arguments(parser) -> None:
    parser.add_argument("--filter", default="*", help="shell-style pattern on model names (default: all)")
    parser.add_argument("--base-resolution", type=int, default=None,
                        help="resolution of the untwisted base (default: the family's; proxy runs use 64)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    parser.add_argument("--rules", choices=("tinynet", "efficientnet"), default=None,
                        help="override the EfficientNet-family rule set (other families ignore it)")
    parser.add_argument("--measure", action="store_true",
                        help="also build each model and count FLOPs with ptflops (slow)")
    parser.add_argument("--csv", metavar="PATH", default=None, help="also write the table as CSV ('-' = stdout only)")


def model_rows(pattern: str = "*", *, base_resolution: int | None = None, num_classes: int = 1000,
               rules: str | None = None, measure: bool = False) -> list[dict]:
    """One dict per registered model matching ``pattern`` (the table of ``rubik models``)."""
    rows = []
    for name in list_models(pattern):
        spec = get_model_spec(name)
        use_rules = rules if spec.base == "efficientnet_b0" else None   # --rules only concerns that family
        t = spec.twist
        try:
            arch = Arch.from_spec(spec, base_resolution=base_resolution, rules=use_rules)
            flops = arch.flops(num_classes)
        except ValueError as e:  # e.g. resolution below MIN_IMAGE_SIZE px at a small base resolution
            rows.append({"name": name, "base": spec.base, "r": round(t.resolution, 4), "d": round(t.depth, 4),
                         "w": round(t.width, 4), "error": str(e)})
            continue
        row = {
            "name": name,
            "base": spec.base,
            "r": round(t.resolution, 4),
            "d": round(t.depth, 4),
            "w": round(t.width, 4),
            "rules": arch.rules_name or "",
            "conv": "" if arch.conv.dense else f"spconv {arch.conv.alpha:g}",
            "resolution": arch.input_size,
            "params_m": round(arch.params(num_classes) / 1e6, 3),
            "flops_m": round(flops / 1e6, 2),
        }
        if measure:
            from rubik.flops import count_flops   # torch and ptflops: only --measure builds models

            model = create_model(arch, num_classes=num_classes, **spec.kwargs)
            row["ptflops_m"] = round(count_flops(model) / 1e6, 2)
        paper = spec.paper or {}
        paper_flops = paper.get("flops_m")
        comparable = arch.base_resolution == Arch.from_spec(spec).base_resolution and num_classes == 1000
        row["paper_params_m"] = paper.get("params_m")
        row["paper_flops_m"] = paper_flops
        row["diff_pct"] = (round(100.0 * (flops / 1e6 - paper_flops) / paper_flops, 1)
                           if paper_flops and comparable else None)
        row["paper_top1"] = paper.get("top1")
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(no models)"
    headers = []
    for r in rows:
        headers += [h for h in r if h not in headers]
    cells = [["" if r.get(h) is None else str(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    left = {"name", "base"}

    def fmt(values):
        return "  ".join(v.ljust(w) if h in left else v.rjust(w) for v, w, h in zip(values, widths, headers))

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines += [fmt(c) for c in cells]
    return "\n".join(lines)


def main(args) -> int:
    rows = model_rows(args.filter, base_resolution=args.base_resolution, num_classes=args.num_classes,
                      rules=args.rules, measure=args.measure)
    if not rows:
        print(f"no registered model matches {args.filter!r}", file=sys.stderr)
        return 1
    fields = []
    for r in rows:
        fields += [h for h in r if h not in fields]
    if args.csv == "-":
        writer = csv.DictWriter(sys.stdout, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        return 0
    print(format_table(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    return 0
