import numpy as np
import pandas as pd
import pytest

from rubik.frontier import dial_importance, dial_table, flops_bands, on_frontier, pareto_frontier


def _points():
    # (flops, top1): hand-made; frontier = a, c, e, g
    return pd.DataFrame({
        "id": list("abcdefgh"),
        "flops": [10, 20, 20, 30, 40, 45, 50, 60],
        "top1": [50, 48, 55, 54, 60, 60, 61, 59],
    }).set_index("id")


def test_frontier_hand_made():
    f = pareto_frontier(_points())
    assert list(f.index) == ["a", "c", "e", "g"]
    assert f["top1"].is_monotonic_increasing and f["flops"].is_monotonic_increasing


def test_frontier_ties_and_other_axes():
    df = pd.DataFrame({"params": [3, 3, 1], "ema_top1": [10.0, 12.0, 5.0]})
    f = pareto_frontier(df, x="params", y="ema_top1")
    assert list(f.index) == [2, 1]
    # a duplicate point is kept once
    df = pd.DataFrame({"flops": [1, 1], "top1": [5.0, 5.0]})
    assert len(pareto_frontier(df)) == 1
    assert on_frontier(_points()).sum() == 4


def test_frontier_single_point():
    f = pareto_frontier(pd.DataFrame({"flops": [5], "top1": [1.0]}))
    assert len(f) == 1


def test_frontier_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        pareto_frontier(pd.DataFrame({"flops": [], "top1": []}))
    with pytest.raises(ValueError, match="missing column"):
        pareto_frontier(pd.DataFrame({"flops": [1]}))
    df = pd.DataFrame({"flops": [1, 2, 3], "top1": [1.0, np.nan, 3.0]})
    with pytest.raises(ValueError, match="NaN"):
        pareto_frontier(df)
    assert list(pareto_frontier(df, dropna=True).index) == [0, 2]


def test_bands_and_table():
    df = _points()
    b = flops_bands(df, 2)
    assert b.nunique() == 2 and b.notna().all()
    df = df.assign(r=1.0, d=1.0, w=1.0)
    t = dial_table(df, n_bands=2)
    assert len(t) == 3 * len(df) and set(t.dial) == {"r", "d", "w"}


def test_dial_importance_recovers_known_effect():
    rng = np.random.default_rng(0)
    n = 80
    r, d, w = (np.exp(rng.uniform(np.log(0.4), np.log(1.2), n)) for _ in range(3))
    flops = 1e8 * r ** 2 * d * w ** 2
    # at fixed FLOPs: resolution helps, width hurts
    top1 = 10 * np.log2(flops / 1e6) + 4 * np.log2(r) - 3 * np.log2(w) + rng.normal(0, 0.3, n)
    imp = dial_importance(pd.DataFrame(dict(r=r, d=d, w=w, flops=flops, top1=top1)), n_boot=200)
    assert imp.iloc[0]["dial"] == "r" and imp.iloc[-1]["dial"] == "w"
    row = imp.set_index("dial").loc["r"]
    assert row.slope_lo > 0 and row.partial_spearman > 0.3 and row.rho_lo < row.partial_spearman < row.rho_hi
    with pytest.raises(ValueError, match="at least 4"):
        dial_importance(pd.DataFrame(dict(r=r[:3], d=d[:3], w=w[:3], flops=flops[:3], top1=top1[:3])))


def test_frontier_kinds_filter():
    df = _points().assign(kind=["base", "random", "random", "random", "giant", "random", "random", "random"])
    f = pareto_frontier(df, kinds=("random",))
    assert list(f.index) == ["c", "f", "g"]
    with pytest.raises(ValueError, match="empty"):
        pareto_frontier(df, kinds="nothing")


def test_dial_importance_constant_accuracy():
    df = pd.DataFrame(dict(r=[0.5, 0.6, 0.7, 0.8, 0.9], d=[1.0, 0.9, 0.8, 0.7, 0.6], w=[0.5] * 5,
                           flops=[1, 2, 3, 4, 5], top1=[10.0] * 5))
    with pytest.raises(ValueError, match="same 'top1'"):
        dial_importance(df)
