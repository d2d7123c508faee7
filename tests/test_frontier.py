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


# ----------------------------------------------------------------------------- joint dial effects, winner's curse

def _synthetic_sweep(n=120, seed=0, noise=1.0, g=(6.0, -7.0, 3.0)):
    """Random dials, FLOPs ~ r^2 d w^2 (with a jitter like channel rounding), y linear in the logs."""
    from rubik.frontier import joint_dial_effects  # noqa: F401  (the import is what the caller tests)

    rng = np.random.default_rng(seed)
    r, d, w = (np.exp(rng.uniform(np.log(lo), np.log(hi), n)) for lo, hi in ((0.4, 1.2), (0.25, 1.5), (0.25, 1.2)))
    flops = 3.2e7 * r ** 2 * d * w ** 2 * np.exp(rng.normal(0, 0.05, n))
    y = 60 + g[0] * np.log2(r) + g[1] * np.log2(d) + g[2] * np.log2(flops / 3.2e7) + rng.normal(0, noise, n)
    return pd.DataFrame(dict(r=r, d=d, w=w, flops=flops, top1=y, kind="random"))


def test_joint_dial_effects_recover_known_slopes():
    from rubik.frontier import joint_dial_effects

    df = _synthetic_sweep()
    out = joint_dial_effects(df, n_boot=300).set_index("effect")
    truth = {"r for w": 6.0, "d for w": -7.0, "r for d": 6.0 + 14.0, "w at equal r, d": 6.0}
    for k, v in truth.items():
        assert out.loc[k, "lo"] <= v <= out.loc[k, "hi"], (k, out.loc[k].to_dict())
        assert out.loc[k, "value"] == pytest.approx(v, abs=0.6)
    assert out["max_vif"].iloc[0] < 5 and out["r2"].iloc[0] > 0.9 and out["resid_std"].iloc[0] == pytest.approx(1, rel=0.2)
    # the one-dial-at-a-time slope of r mixes in depth (r and d are both free at equal FLOPs), the joint one does not
    from rubik.frontier import dial_importance

    single = dial_importance(df, n_boot=0).set_index("dial").loc["r", "slope"]
    assert abs(single - 6.0) > 1.0
    with pytest.raises(ValueError, match="collinear"):
        joint_dial_effects(df.assign(d=0.5), n_boot=0)


def test_frontier_bias_is_the_expected_maximum_of_noise():
    from rubik.frontier import frontier_at, frontier_bias

    # 10 models with the same accuracy and FLOPs (and a weak cheap one): the frontier there is the
    # best of the 10 re-noised values, E[max of 10 N(0, 1)] = 1.539
    df = pd.DataFrame(dict(flops=[1e6] + [1e7] * 10, top1=[0.0] + [50.0] * 10, kind="random"))
    out = frontier_bias(df, [1e7], noise_std=2.0, n_rep=4000, seed=1)
    assert out["frontier"].iloc[0] == 50.0
    assert out["bias"].iloc[0] == pytest.approx(2.0 * 1.5388, abs=0.1)
    assert frontier_bias(df, [1e7], noise_std=0.0, n_rep=5)["bias"].iloc[0] == 0.0
    # interpolation is linear in log FLOPs, NaN outside the frontier
    f = pd.DataFrame(dict(flops=[1e6, 4e6], top1=[40.0, 60.0]))
    assert frontier_at(f, [2e6, 4e6]).tolist() == [50.0, 60.0] and np.isnan(frontier_at(f, [8e6])[0])
