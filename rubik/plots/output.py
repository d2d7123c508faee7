"""Writing figures (PNG and PDF under stable names) and tables (CSV and Markdown) to disk."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


# no creation date and no library versions in the files: the same figure from the same records is
# the same bytes, so regenerating committed figures (`make figures`) leaves git clean
FIGURE_METADATA = {"png": {"Software": None},
                   "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}
#: significant digits of the floats in written CSV tables: a float's last digits move with the
#: summation order of the numeric libraries; committed tables must not
CSV_DIGITS = 12


def save_figure(fig, name: str, out_dir, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150):
    """Write ``fig`` as ``out_dir/name.png`` and ``.pdf``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem if Path(name).suffix in (".png", ".pdf") else name
    paths = []
    for fmt in formats:
        p = out / f"{stem}.{fmt}"
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata=FIGURE_METADATA.get(fmt))
        paths.append(p)
    return paths


def _fmt(v, floatfmt):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return format(float(v), floatfmt)
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(x, floatfmt) for x in v) + ")"
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``)."""
    d = df.reset_index() if index else df
    head = [str(c) for c in d.columns]
    rows = [[_fmt(v, floatfmt) for v in r] for r in d.itertuples(index=False, name=None)]
    num = [pd.api.types.is_numeric_dtype(d[c]) for c in d.columns]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if n else "---" for n in num) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def save_table(df: pd.DataFrame, name: str, out_dir, floatfmt: str = ".4g", index: bool = False):
    """Write ``df`` as ``out_dir/name.csv`` and ``name.md``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv, index=index, float_format=f"%.{CSV_DIGITS}g")
    md.write_text(to_markdown(df, floatfmt=floatfmt, index=index))
    return [csv, md]
