"""rubik.report: the REPORT's statistics (t-intervals, paired gains, depth in blocks, the families' table)."""
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
