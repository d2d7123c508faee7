import numpy as np
import pandas as pd
import pytest

from rubik.formula import TinyFormula, derive_family, synthetic_frontier


def naive_width(r, d, c):
    return float(np.sqrt(c / (r * r * d)))


def test_gpr_recovers_known_curves_within_uncertainty():
    df = synthetic_frontier(30, noise=0.02, seed=1)
    f = TinyFormula(width_solver=naive_width).fit(df)
    cs = np.exp(np.linspace(np.log(0.06), np.log(0.95), 15))
    mean, std = f.predict(cs, return_std=True)
    truth = np.column_stack([0.5 + 0.5 * np.sqrt(cs), 0.45 + 0.55 * cs ** 0.4])
    z = np.abs(mean - truth) / std
    assert mean.shape == std.shape == (15, 2)
    assert (z < 3).all(), z.max()
    assert np.abs(mean - truth).max() < 0.05
    # the uncertainty reflects the noise level (0.02), not wildly over-confident or vague
    assert 0.003 < std.mean() < 0.06


def test_predict_scalar_and_twist():
    f = TinyFormula(width_solver=naive_width).fit(synthetic_frontier(20, seed=2))
    m, s = f.predict(0.25, return_std=True)
    assert m.shape == (2,) and s.shape == (2,) and (s > 0).all()
    t = f.twist(0.25)
    assert t.resolution == pytest.approx(m[0]) and t.depth == pytest.approx(m[1])
    assert t.resolution ** 2 * t.depth * t.width ** 2 == pytest.approx(0.25)
    assert f.get_params()["width_solver"] is naive_width
    from sklearn.base import clone

    g = clone(f)
    assert g.get_params() == f.get_params() and not hasattr(g, "gp_r_")
    assert f.set_params(log_target=True).log_target


def test_sklearn_conventions():
    """BaseEstimator (clone, params, repr), NotFittedError before fit, and fit(c, y) symmetric with
    predict(c): the same fit as from the frontier table."""
    from sklearn.base import BaseEstimator, clone
    from sklearn.exceptions import NotFittedError

    f = TinyFormula(width_solver=naive_width, log_target=True)
    assert isinstance(f, BaseEstimator) and "log_target=True" in repr(f)
    with pytest.raises(NotFittedError):
        f.predict([0.5])
    df = synthetic_frontier(15, seed=6)
    a = clone(f).fit(df)
    b = clone(f).fit(df[["flops_ratio"]].to_numpy(), df[["r", "d"]].to_numpy())
    c = clone(f).fit(df["flops_ratio"].to_numpy(), df[["r", "d"]].to_numpy())
    x = np.array([[0.1], [0.3]])
    np.testing.assert_allclose(a.predict(x), b.predict(x[:, 0]))
    np.testing.assert_allclose(a.predict(x), c.predict(x))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        clone(f).fit(df["flops_ratio"].to_numpy(), df["r"].to_numpy())
    with pytest.raises(ValueError, match="Invalid parameter"):
        f.set_params(nosuch=1)


def test_log_target():
    df = synthetic_frontier(20, seed=3)
    m = TinyFormula(log_target=True).fit(df).predict([0.1, 0.5])
    assert np.abs(m - np.column_stack([0.5 + 0.5 * np.sqrt([0.1, 0.5]),
                                       0.45 + 0.55 * np.array([0.1, 0.5]) ** 0.4])).max() < 0.06


def test_bad_inputs():
    f = TinyFormula()
    with pytest.raises(ValueError, match="fit"):
        f.predict(0.5)
    with pytest.raises(ValueError, match="at least 2"):
        f.fit(pd.DataFrame({"flops_ratio": [], "r": [], "d": []}))
    with pytest.raises(ValueError, match="at least 2"):
        f.fit(pd.DataFrame({"flops_ratio": [0.5], "r": [0.8], "d": [0.8]}))
    with pytest.raises(ValueError, match="NaN"):
        f.fit(pd.DataFrame({"flops_ratio": [0.5, 0.2], "r": [0.8, np.nan], "d": [0.8, 0.6]}))
    with pytest.raises(ValueError, match="lacks column"):
        f.fit(pd.DataFrame({"flops_ratio": [0.5, 0.2]}))
    f.fit(synthetic_frontier(10))
    with pytest.raises(ValueError, match="above the base"):
        f.predict(1.5)
    with pytest.raises(ValueError, match="> 0"):
        f.twist(0.0)


def test_derive_family_naive_solver():
    f = TinyFormula(width_solver=naive_width).fit(synthetic_frontier(20, seed=4))
    assert len(derive_family(f, [0.5], include_giant=False)) == 1
    fam = derive_family(f, [0.5, 0.25, 0.125, 0.0625], giant="nominal")
    assert list(fam.kind) == ["tiny", "giant"] * 4
    g = fam[fam.kind == "giant"]
    assert list(g.phi) == [-1, -2, -3, -4]
    assert g.iloc[3].r == pytest.approx(1.15 ** -4)
    t = fam[fam.kind == "tiny"]
    assert (t.r ** 2 * t.d * t.w ** 2).to_numpy() == pytest.approx(t.target_c.to_numpy())
    assert fam.train_kwargs.iloc[0]["arch"]["base"] == "efficientnet_b0"


def test_curve():
    f = TinyFormula(width_solver=naive_width).fit(synthetic_frontier(15, seed=5))
    cv = f.curve(n=7)
    assert list(cv.columns) == ["c", "r", "d", "r_std", "d_std", "w"] and len(cv) == 7
    assert cv.c.min() == pytest.approx(f.c_range_[0])


def test_real_width_solver_and_families():
    from rubik.flops import flops_ratio

    f = TinyFormula().fit(synthetic_frontier(15, seed=0))
    t = f.twist(0.25)
    assert flops_ratio("efficientnet_b0", t) == pytest.approx(0.25, rel=0.03)
    assert f.arch(0.25).twist == t and f.arch(0.25).input_size == int(224 * t.resolution)
    fam = derive_family(f)  # TinyNet-like c = 1/2..1/16 + FLOPs-matched inversed giant models
    assert len(fam) == 8 and list(fam.kind) == ["tiny", "giant"] * 4
    t, g = fam[fam.kind == "tiny"], fam[fam.kind == "giant"]
    assert t.flops_ratio.to_numpy() == pytest.approx(t.target_c.to_numpy(), rel=0.03)
    # giant networks move in coarser FLOPs steps (r, d, w together): closest step within 10 %
    assert g.flops_ratio.to_numpy() == pytest.approx(g.target_c.to_numpy(), rel=0.1)
    assert g.phi.is_monotonic_decreasing and g.phi.iloc[-1] < -4  # real FLOPs need more than phi = -4
    gh = derive_family(f, base="ghostnet_a")  # GhostNet-B/C/D at 300M/141M/52M of GhostNet-A
    assert list(gh.name[gh.kind == "tiny"]) == ["ghostnet_b", "ghostnet_c", "ghostnet_d"]
    kw = gh.train_kwargs.iloc[0]
    assert kw["arch"]["base"] == "ghostnet_a" and kw["arch"]["twist"] == [gh.r[0], gh.d[0], gh.w[0]]
    from rubik.formula import family_configs
    from rubik.train import TrainConfig

    cfg = family_configs(gh, TrainConfig())["ghostnet_b"]
    assert cfg.arch.input_size == gh.resolution[0]
    assert (gh.resolution[gh.kind == "tiny"] < 240).all()
    with pytest.raises(ValueError, match="above the base"):
        derive_family(f, [0.5, 2.0])


def test_unknown_base():
    with pytest.raises(ValueError, match="unknown base model 'vgg'"):
        TinyFormula(base="vgg").fit(synthetic_frontier(5))


def test_default_kernel_lets_a_flat_dial_be_all_noise():
    """A dial with no trend in c: the learned noise must not sit at its bound (the old 0.5 did), and
    the predictive std must match the dial's scatter (not under-state it)."""
    import warnings

    rng = np.random.default_rng(3)
    c = np.exp(rng.uniform(np.log(0.05), np.log(0.8), 16))
    df = pd.DataFrame(dict(flops_ratio=c, r=0.6 + 0.2 * np.log2(c / 0.05) / 4 + rng.normal(0, 0.01, 16),
                           d=0.37 + rng.normal(0, 0.07, 16)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = TinyFormula(width_solver=lambda r, d, c: 1.0).fit(df)
    assert not any("noise_level" in str(w.message) for w in caught), [str(w.message) for w in caught]
    _, std = f.predict(0.2, return_std=True)
    assert std[1] == pytest.approx(df.d.std(), rel=0.25)
    assert std[0] < 0.05                                   # r has a trend and little noise: a tight fit


def test_one_formula_fit_for_notebooks_04_and_05():
    """fit_formula is the frontier (plus layers up to min_points) fed to TinyFormula, and the two
    notebooks that fit a formula both go through it with the preset's formula_min_points."""
    from pathlib import Path

    from rubik.formula import fit_formula
    from rubik.frontier import pareto_layers

    df = synthetic_frontier(12, seed=7).assign(status="done", kind="random", flops=lambda t: t.flops_ratio * 1e8,
                                               top1=lambda t: 50 + 10 * t.flops_ratio)
    formula, points = fit_formula(df, min_points=4, width_solver=naive_width)
    ref = TinyFormula(width_solver=naive_width).fit(pareto_layers(df, min_points=4))
    np.testing.assert_allclose(formula.predict([0.2, 0.6]), ref.predict([0.2, 0.6]))
    assert len(points) >= 4
    src = "".join(p.read_text() for p in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py")))
    assert src.count("fit_formula(") == 2 and "min_points=formula_min_points" in src
    assert "TinyFormula(" not in src and "min_points=3" not in src


def test_hyperparameters_at_their_bounds_are_recorded_not_warned():
    """Notebook 04 showed an unexplained sklearn ConvergenceWarning (issue 37): a GP hyperparameter at
    a bound of the documented kernel. The fit now keeps it in ``bounds_hit_`` and warns nothing."""
    import warnings

    import numpy as np

    from rubik.formula import TinyFormula

    c = np.array([0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0])
    r = np.array([0.5, 0.7, 0.55, 0.8, 0.6, 0.9, 1.0])
    d = np.array([0.4, 0.42, 0.4, 0.41, 0.4, 0.4, 0.41])    # no trend in c
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = TinyFormula(base_resolution=64).fit(c, np.c_[r, d])
    assert set(f.bounds_hit_) == {"r", "d"}
    assert "constant at its lower bound 0.01" in f.bounds_hit_["d"]
