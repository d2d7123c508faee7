"""The pre-registered analysis (rubik.study_stats): intervals, Holm, decisions and the trend line,
checked against textbook values on small synthetic cells."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rubik import study_explore as SX
from rubik import study_stats as SS


def _cells(spec, n_img=400, seed=0):
    """Cells from ``{(name, epochs): [per-seed accuracy, ...]}`` with per-image outcomes drawn at
    those accuracies (exact counts, random positions)."""
    rng = np.random.default_rng(seed)
    c = SS.Cells()
    for key, accs in spec.items():
        rows = []
        for a in accs:
            row = np.zeros(n_img, bool)
            row[rng.choice(n_img, int(round(a * n_img)), replace=False)] = True
            rows.append(row)
        c.correct[key] = np.stack(rows)
        c.seeds[key] = list(range(len(accs)))
        c.devices[key] = ["cpu"] * len(accs)
    return c


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    adj = SS.holm(p)
    # sorted 0.005, 0.01, 0.03, 0.04 with m = 4: 0.02, 0.03, 0.06, 0.06 (monotone)
    assert adj[3] == pytest.approx(0.02) and adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06) and np.isnan(adj[4])
    assert SS.holm([0.5, 0.9])[1] == 1.0


def test_own_interval_is_welch_and_pooled_uses_the_schedule_noise():
    a, b = [0.70, 0.72, 0.75], [0.60, 0.61, 0.66]
    cells = _cells({("A", 40): a, ("B", 40): b, ("C", 40): [0.5, 0.52], ("D", 20): [0.3, 0.4]})
    pooled = SS.pooled_variance(cells)
    boot = SS.Bootstrap(cells, n=2000)
    row = SS.estimate("A-B", {("A", 40): 1.0, ("B", 40): -1.0}, cells, boot, pooled)
    x, y = np.array(a) * 100, np.array(b) * 100
    assert row["theta"] == pytest.approx(x.mean() - y.mean())
    ref = stats.ttest_ind(x, y, equal_var=False)
    assert row["own_p"] == pytest.approx(ref.pvalue)
    # pooled over the three 40-epoch cells only (the 20-epoch cell has its own noise)
    sp2 = (2 * x.var(ddof=1) + 2 * y.var(ddof=1) + 1 * np.var([50, 52], ddof=1)) / 5
    assert pooled[40] == pytest.approx((sp2, 5))
    half = stats.t.ppf(0.975, 5) * math.sqrt(sp2 * (1 / 3 + 1 / 3))
    assert (row["pooled_lo"], row["pooled_hi"]) == pytest.approx((row["theta"] - half, row["theta"] + half))
    # the conservative interval is the union, its p the largest
    assert row["cons_lo"] == min(row["own_lo"], row["boot_lo"], row["pooled_lo"])
    assert row["cons_hi"] == max(row["own_hi"], row["boot_hi"], row["pooled_hi"])
    assert row["cons_p"] == max(row["own_p"], row["boot_p"], row["pooled_p"])
    assert row["boot_lo"] < row["theta"] < row["boot_hi"]


def test_bootstrap_is_reproducible_and_missing_cells_are_not_measured():
    cells = _cells({("A", 40): [0.7, 0.72], ("B", 40): [0.6, 0.65]})
    d1 = SS.Bootstrap(cells, n=500).contrast({("A", 40): 1, ("B", 40): -1})
    d2 = SS.Bootstrap(cells, n=500).contrast({("A", 40): 1, ("B", 40): -1})
    assert np.array_equal(d1, d2)
    row = SS.estimate("A-Z", {("A", 40): 1.0, ("Z", 40): -1.0}, cells, SS.Bootstrap(cells, n=100),
                      SS.pooled_variance(cells))
    assert np.isnan(row["theta"]) and "missing" in row["note"]
    assert SS.decide({**row, "holm_p": np.nan}, positive="+", negative="-", neutral="0") == "not yet measured"


def test_decision_needs_holm_and_the_conservative_interval():
    base = dict(cons_lo=0.5, cons_hi=2.0)
    assert SS.decide({**base, "holm_p": 0.01}, positive="+", negative="-", neutral="0") == "+"
    assert SS.decide({**base, "holm_p": 0.2}, positive="+", negative="-", neutral="0") == "0"
    assert SS.decide(dict(cons_lo=-2, cons_hi=-0.1, holm_p=0.001), positive="+", negative="-", neutral="0") == "-"
    assert SS.decide(dict(cons_lo=-0.2, cons_hi=3, holm_p=0.001), positive="+", negative="-", neutral="0") == "0"


def test_slope_contrast_is_least_squares_in_log2():
    pts = [(7, ("a", 40)), (10, ("b", 40)), (13, ("c", 40)), (16, ("d", 40))]
    coef = SS._slope_coef(pts)
    y = {("a", 40): 80.0, ("b", 40): 78.0, ("c", 40): 77.5, ("d", 40): 75.0}
    got = sum(a * y[k] for k, a in coef.items())
    assert got == pytest.approx(np.polyfit(np.log2([7, 10, 13, 16]), list(y.values()), 1)[0])


def test_trend_line_finds_a_planted_crossover():
    # a depth effect of -4 at 10 epochs rising by +2 per doubling: zero at 40 epochs
    spec = {}
    for e, gap in ((10, -4.0), (20, -2.0), (40, 0.0), (80, 2.0)):
        spec[("deep", e)] = [0.70 + gap / 100 + d for d in (-0.004, 0.0, 0.004)]
        spec[("shallow", e)] = [0.70 + d for d in (-0.004, 0.0, 0.004)]
    cells = _cells(spec, n_img=4000)
    pooled, boot = SS.pooled_variance(cells), SS.Bootstrap(cells, n=1000)
    import pandas as pd

    coefs = {e: {("deep", e): 1.0, ("shallow", e): -1.0} for e in (10, 20, 40, 80)}
    table = pd.DataFrame([dict(epochs=e, theta=SS.estimate("x", c, cells, boot, pooled)["theta"])
                          for e, c in coefs.items()])
    tr = SS.trend(table, coefs, cells, boot, pooled)
    assert tr["beta"] == pytest.approx(2.0, abs=0.05) and tr["beta_lo"] > 0
    assert tr["crossover_epochs"] == pytest.approx(40, rel=0.05)
    assert tr["crossover_lo"] < 40 < tr["crossover_hi"]


def test_committed_study_under_the_plan(tmp_path):
    """The committed 5/10/20-epoch records through the plan: the numbers REPORT v3 restates."""
    from rubik.study import REPO_ROOT

    t = SS.analyse([REPO_ROOT / "data/results/imagenette_long/sweep"], n_boot=2000)
    g = t["claim2"].set_index("estimand")
    row = g.loc["G: TinyNet dials - giant, c = 0.25, 20 epochs"]
    assert row["theta"] == pytest.approx(1.42, abs=0.01)
    # the v2 claim "+1.4 clears zero" rests on the pooled interval only: the own and bootstrap cross 0
    assert row["own_lo"] < 0 and row["pooled_lo"] > 0 and row["decision"] == "ties"
    e20 = t["depth"].set_index("estimand").loc["E20: 16 vs 7 blocks, ladder, 20 epochs"]
    assert e20["theta"] == pytest.approx((69.6 - 74.1) / math.log2(16 / 7), abs=0.1) and e20["cons_hi"] < 0
    cpu = SS.analyse([REPO_ROOT / "data/results/imagenette_long/sweep"], cpu_only=True, n_boot=200)
    assert cpu["cells"].n(("r=0.8, 7 blocks", 20)) == 2 and t["cells"].n(("r=0.8, 7 blocks", 20)) == 3


def test_detectable_difference_is_the_t_power_formula():
    out = SS.detectable_difference({("A", 20): (1.0, 3), ("B", 20): (-1.0, 3)}, 1.0)
    # two cells of 3 seeds: equal-variance Welch df = 4
    assert out["mdd_df"] == pytest.approx(4)
    assert out["mdd"] == pytest.approx((stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * math.sqrt(2 / 3))
    # a stricter level or more power needs a larger effect; more seeds a smaller one
    assert SS.detectable_difference({("A", 20): (1.0, 3), ("B", 20): (-1.0, 3)}, 1.0, alpha=0.025)["mdd"] > out["mdd"]
    assert SS.detectable_difference({("A", 20): (1.0, 6), ("B", 20): (-1.0, 6)}, 1.0)["mdd"] < out["mdd"]


def test_base128_cells_pool_their_own_noise_and_are_contrasted_with_the_64px_ladder():
    spec = {}
    for i, b in enumerate((7, 10, 13, 16)):
        spec[(SS.DEPTH_RUNG.format(b), 20)] = [0.80 - 0.02 * i, 0.81 - 0.02 * i, 0.79 - 0.02 * i]
        spec[(SS.DEPTH_RUNG_128.format(b), 20)] = [0.85, 0.88, 0.82]     # flat at 128 px, noisier
    cells = _cells(spec, n_img=1000)
    pooled = SS.pooled_variance(cells)
    assert set(pooled) == {20, (20, "128px")} and pooled[(20, "128px")][0] > pooled[20][0]
    t = SS.base128_estimands(cells, SS.Bootstrap(cells, n=500), pooled).set_index(
        SS.base128_estimands(cells, SS.Bootstrap(cells, n=500), pooled)["estimand"].str.split(":").str[0])
    assert t.loc["P64", "theta"] < -2 and abs(t.loc["P128", "theta"]) < 0.5
    assert t.loc["dP", "theta"] == pytest.approx(t.loc["P128", "theta"] - t.loc["P64", "theta"])
    assert set(t.loc[["P128", "dP"], "family"]) == {"P"} and np.isfinite(t.loc["dP", "holm_p"])
    assert (t["mdd"] > 0).all() and np.isfinite(t.loc["P128", "mdd_measured"])
    assert t.loc["P128", "decision"] in ("no detectable difference", "depth pays at 128 px", "depth costs at 128 px")


def test_trend_models_recover_a_planted_saturating_series_and_check_out_of_sample():
    # a penalty theta(E) = -1 - 40 / E, per doubling of blocks, on the families' two cells
    per = 1 / math.log2(15 / 7)
    spec, rows, coefs = {}, [], {}
    for e in (5, 10, 20, 40, 80):
        gap = (-1 - 40 / e) / per / 100          # top-1 of TinyNet dials minus ours, as a fraction
        spec[(SS.TINY.format(2), e)] = [0.70 + gap + d for d in (-0.004, 0.0, 0.004)]
        spec[(SS.OURS.format(2), e)] = [0.70 + d for d in (-0.004, 0.0, 0.004)]
    cells = _cells(spec, n_img=4000)
    pooled = SS.pooled_variance(cells)
    boot = SS.Bootstrap(cells, n=300)
    for e in (5, 10, 20, 40, 80):
        coefs[e] = {(SS.TINY.format(2), e): per, (SS.OURS.format(2), e): -per}
        rows.append(dict(epochs=e, theta=sum(a * cells.mean(k) for k, a in coefs[e].items())))
    out = SX.trend_models(pd.DataFrame(rows), coefs, cells, boot, pooled)
    assert out["asymptote"] == pytest.approx(-1, abs=0.15) and out["saturating_p1"] == pytest.approx(-40, abs=2)
    assert out["asymptote_lo"] < out["asymptote"] < out["asymptote_hi"]
    assert out["saturating_chi2"] < out["line_chi2"] and out["saturating_oos_chi2"] < out["line_oos_chi2"]
    assert out["measured_beyond"].startswith("40: ") and "80: " in out["saturating_predicted"]


def test_two_stage_combines_the_stages_own_tests_with_fixed_weights():
    spec = {("A", 20): [0.75, 0.76, 0.74, 0.77, 0.73], ("B", 20): [0.72, 0.73, 0.71, 0.73, 0.72]}
    cells = _cells(spec, n_img=2000)
    out = SX.two_stage(cells, ("A", 20), ("B", 20), [0, 1, 2], [3, 4])
    y = {k: cells.correct[k].mean(axis=1) * 100 for k in spec}
    for label, idx in (("stage1", [0, 1, 2]), ("stage2", [3, 4])):
        ref = stats.ttest_ind(y[("A", 20)][idx], y[("B", 20)][idx], equal_var=False)
        assert out[f"{label}_p"] == pytest.approx(ref.pvalue)
    z = [stats.norm.isf(stats.ttest_ind(y[("A", 20)][i], y[("B", 20)][i], equal_var=False,
                                        alternative="greater").pvalue) for i in ([0, 1, 2], [3, 4])]
    assert out["combined_z"] == pytest.approx(math.sqrt(3 / 5) * z[0] + math.sqrt(2 / 5) * z[1])
    assert out["combined_p"] == pytest.approx(2 * stats.norm.sf(abs(out["combined_z"])))
