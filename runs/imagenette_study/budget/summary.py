"""Print the budget-tuning runs of the Imagenette study (one line per run) from their config and result files.

    .venv/bin/python runs/imagenette_study/budget/summary.py
"""
import json
from pathlib import Path

import pandas as pd

from rubik.train import Recipe

HERE = Path(__file__).resolve().parent
rows = []
for d in sorted(p for p in [*HERE.iterdir(), *HERE.parent.glob("b0_seed*")] if (p / "config.json").is_file()):
    cfg = json.loads((d / "config.json").read_text())
    rec = cfg["recipe"]
    res = json.loads((d / "result.json").read_text()) if (d / "result.json").is_file() else None
    proxy = Recipe.named("proxy")
    changed = {k: v for k, v in rec.items() if k not in ("name", "epochs", "eval_every")
               and v != (list(getattr(proxy, k)) if isinstance(getattr(proxy, k), tuple) else getattr(proxy, k))}
    rows.append(dict(run=d.name, epochs=cfg.get("epochs") or rec["epochs"], seed=cfg["seed"],
                     changes=", ".join(f"{k}={v}" for k, v in changed.items()) or "-",
                     top1=res and round(res["top1"], 2), ema_top1=res and res.get("ema_top1") is not None and round(res["ema_top1"], 2) or None,
                     top5=res and round(res["top5"], 2), train_min=res and round(res["train_time_s"] / 60, 1)))
with pd.option_context("display.width", 200, "display.max_colwidth", 80):
    print(pd.DataFrame(rows).to_string(index=False))
