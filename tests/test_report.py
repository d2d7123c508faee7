"""rubik.report: the REPORT's statistics (t-intervals, paired gains, depth in blocks, the families' table)
and ``rubik report`` that prints them."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rubik import report as Rp


def test_t_interval_matches_the_textbook():
    mean, sem, half = Rp.t_interval([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0 and sem == pytest.approx(np.std([1, 2, 3, 6], ddof=1) / 2)
    assert half == pytest.approx(3.182446 * sem, rel=1e-5)           # t(0.975, 3 dof)
    assert np.isnan(Rp.t_interval([2.0])[2]) and Rp.t_interval([2.0])[0] == 2.0


def test_paired_gains_pair_by_seed_per_level_and_pooled():
    rows = []
    for level, gains in ((1, [1.0, 2.0, 3.0]), (2, [-1.0, 0.0, 4.0])):
        for seed, g in enumerate(gains):
            rows += [dict(level=level, seed=seed, family="giant", top1=50.0 + seed),
                     dict(level=level, seed=seed, family="ours", top1=50.0 + seed + g)]
    rows.append(dict(level=2, seed=3, family="ours", top1=99.0))        # no giant partner: not paired
    out = Rp.paired_gains(pd.DataFrame(rows), "ours").set_index("level")
    assert out.loc[1, "mean"] == 2.0 and out.loc[1, "n"] == 3 and out.loc[1, "positive"] == 3
    assert out.loc[2, "mean"] == 1.0 and out.loc[2, "positive"] == 1
    _, _, half = Rp.t_interval([-1.0, 0.0, 4.0])
    assert (out.loc[2, "lo"], out.loc[2, "hi"]) == pytest.approx((1.0 - half, 1.0 + half))
    assert out.loc["all", "n"] == 6 and out.loc["all", "mean"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="tiny"):
        Rp.paired_gains(pd.DataFrame(rows), "tiny")


def test_blocks_and_where_the_depth_floor_binds():
    df = pd.DataFrame(dict(d=[0.25, 0.36, 0.5, 1.0], repeats=["1,1,1,1,1,1,1", "1,1,1,1,1,1,1", "1,1,1,2,2,2,1", "1,2,2,3,3,4,1"]))
    assert Rp.add_blocks(df)["blocks"].tolist() == [7, 7, 10, 16]
    assert Rp.add_blocks(df.drop(columns="repeats"))["blocks"].tolist() == [7, 7, 10, 16]   # from d
    s = Rp.depth_floor_summary(df, frontier=df.iloc[:3])
    assert s["floor_blocks"] == 7 and s["models_at_floor"] == 2 and s["d_range_at_floor"] == (0.25, 0.36)
    assert s["frontier_at_floor"] == 2 and s["frontier_blocks"] == [7, 7, 10]


def test_family_table_has_params_and_a_measured_latency():
    runs = pd.DataFrame([dict(level=4, family=f, seed=s, top1=50.0 + s + (f == "ours"), base="efficientnet_b0",
                              base_resolution=64, r=r, d=d, w=w, resolution=px, flops=fl, params=p)
                         for f, r, d, w, px, fl, p in (("giant", 0.47, 0.375, 0.6, 30, 1.98e6, 681800),
                                                       ("ours", 0.57, 0.38, 0.29, 36, 1.95e6, 313492))
                         for s in range(3)])
    t = Rp.family_table(runs, latency=True, repeats=3).set_index("family")
    assert t.loc["ours", "mean"] == 52.0 and t.loc["ours", "std"] == 1.0 and t.loc["ours", "n"] == 3
    assert t.loc["giant", "params_m"] == pytest.approx(0.6818) and t.loc["ours", "px"] == 36
    assert (t["latency_ms"] > 0).all() and t["latency_how"].nunique() == 1


def test_mcnemar_counts_discordant_images():
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    out = Rp.mcnemar(a, b)
    assert (out["only_a"], out["only_b"]) == (4, 1)
    assert out["p"] == pytest.approx(0.375)                 # 2 * P(X >= 4), X ~ Bin(5, 1/2) = 2 * 6/32
    assert Rp.mcnemar(a, a)["p"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        Rp.mcnemar(a, b[:-1])


REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "data" / "results" / "imagenette"
B0_RUNS = [REPO / "runs" / "imagenette_study" / "budget" / f"b0_e5_seed{s}" for s in (1, 2)]


def test_report_prints_the_numbers_report_md_quotes():
    """The committed 5-epoch study, as REPORT.md quotes it (its summary table, seed-noise section
    and claim 2): the command next to those numbers prints them."""
    lines = []
    Rp.report(STUDY, b0_runs=B0_RUNS, latency=False, show=lines.append)
    out = "\n".join(lines)
    for quoted in ("seed 1: top-1 59.24", "B0: mean 60.47, std 1.65 over 3 seeds",
                   "100 random models: top-1 31.9..68.4, std 7.64; 3.58 points per doubling of FLOPs; "
                   "std at equal FLOPs (residual) 5.97", "B0 seed std / residual std = 0.28",
                   "r for w: +3.48 [+2.34, +4.52]", "d for w: -9.29 [-10.15, -8.35]",
                   "every d <= 0.374 builds the same 7-block network",
                   "noise std 1.65; mean bias 1.01; gap 4.0..6.4 -> 3.2..4.8",
                   "tiny - giant, all levels: -3.11 +- 0.63 (sem; 95% CI -4.44..-1.78), 3/20 pairs positive",
                   "ours - giant, all levels: +3.43 +- 0.66 (sem; 95% CI +2.05..+4.80), 17/20 pairs positive",
                   "| 0.256 | 8.2 | 55.22 +- 0.67 (40, n=5) | 52.88 +- 2.94 (52, n=5) | **61.04** +- 1.50 (51, n=5) |",
                   "tinynet_a 0.873143 1.036 +- 0.189"):
        assert quoted in out, quoted
    assert "latency_ms" not in out   # latency=False measures nothing


def test_extra_b0_runs_must_be_trained_at_the_sweeps_budget(tmp_path):
    run = tmp_path / "b0_other"
    run.mkdir()
    cfg = json.loads((B0_RUNS[0] / "config.json").read_text())
    (run / "result.json").write_text((B0_RUNS[0] / "result.json").read_text())
    spec = json.loads((STUDY / "sweep" / "sweep.json").read_text())
    for change, message in ((dict(epochs=4), "epochs 4, the sweep's 5"),
                            (dict(recipe=cfg["recipe"] | {"lr_per_1024": 0.016}),
                             "recipe lr_per_1024 0.016, the sweep's 0.008"),
                            (dict(twist=[0.5, 1.0, 1.0]), "not the base model")):
        (run / "config.json").write_text(json.dumps(cfg | change))
        b0 = Rp.b0_seeds(pd.DataFrame(columns=["id", "top1", "time_s"]), [run])
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            Rp.check_same_budget(b0, spec)
    (run / "config.json").write_text(json.dumps(cfg))
    Rp.check_same_budget(Rp.b0_seeds(pd.DataFrame(columns=["id", "top1", "time_s"]), [run]), spec)


def test_report_command_bad_input_is_one_line(tmp_path, capsys):
    from rubik.cli import main
    from rubik.sweep import init_sweep

    (tmp_path / "empty").mkdir()
    sweep = tmp_path / "unrun" / "sweep"
    init_sweep(sweep, [dict(id="base", base="efficientnet_b0", r=1.0, d=1.0, w=1.0)])
    cases = {tmp_path / "missing": "no such folder",
             tmp_path / "empty": "no sweep records (expected",
             sweep: "(give the run folder, its parent)",
             tmp_path / "unrun": "no finished trial among 1"}
    for folder, message in cases.items():
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("rubik report: error: ") and message in err and err.count("\n") == 1, err
    assert main(["report", str(STUDY), "--b0-runs", str(tmp_path / "empty")]) == 2
    assert "no config.json (expected a finished `rubik train` run folder)" in capsys.readouterr().err


def test_num_classes_is_read_from_the_recorded_params():
    from rubik.flops import analytic_params

    row = dict(base="efficientnet_b0", r=0.5, d=0.6, w=0.7)
    for k in (10, 1000):
        row["params"] = analytic_params("efficientnet_b0", (0.5, 0.6, 0.7), num_classes=k)
        assert Rp.num_classes_of(pd.DataFrame([row])) == k
    with pytest.raises(ValueError, match="fit no head size"):
        Rp.num_classes_of(pd.DataFrame([row | {"params": row["params"] + 7}]))
