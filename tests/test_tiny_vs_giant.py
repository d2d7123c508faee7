"""The tiny-vs-giant design (``rubik.tiny_vs_giant``)."""
import pytest

from rubik.tiny_vs_giant import TVG_LABELS, tiny_vs_giant_trials


def test_tiny_vs_giant_levels_at_exact_c():
    """levels='c': every contender sits at c = 2^-phi (within the rounding of the real networks),
    the TinyNet contender keeps the released r and d, and tiny='both' adds our formula."""
    from rubik.formula import TinyFormula, synthetic_frontier
    from rubik.models import get_model_spec

    formula = TinyFormula(base_resolution=64, num_classes=10).fit(synthetic_frontier(30, seed=0))
    t = tiny_vs_giant_trials([1, 2, 4], tiny="both", formula=formula, levels="c", base_resolution=64,
                             num_classes=10)
    assert list(t.id) == ["giant_m1", "tiny_m1", "ours_m1", "giant_m2", "tiny_m2", "ours_m2",
                          "giant_m4", "tiny_m4", "ours_m4"]
    for _, row in t.iterrows():
        assert abs(row.flops_ratio / 2.0 ** -row.level - 1) < 0.06, row.to_dict()
    for level, sub in t.groupby("level"):     # equal FLOPs within a level (w is solved finely)
        assert sub.flops.max() / sub.flops.min() < 1.03, sub[["id", "flops"]]
    # c = 0.125 at 64 px: the nearest giant is at 0.165; the contenders follow it, not c
    t3 = tiny_vs_giant_trials([3], tiny="both", formula=formula, levels="c", base_resolution=64, num_classes=10)
    assert t3.flops_ratio.min() > 0.15 and t3.flops.max() / t3.flops.min() < 1.03
    e = t[t.id == "tiny_m4"].iloc[0]
    assert (e.r, e.d) == get_model_spec("tinynet_e").twist.as_tuple()[:2] and e.resolution == 30  # 30 px >= 24 px floor
    assert set(TVG_LABELS) == set(t.family)
    # released levels: the TinyNet's own dials and FLOPs ratio (0.64 for TinyNet-B at 64 px, 10 classes)
    r = tiny_vs_giant_trials([1], tiny="released", base_resolution=64, num_classes=10)
    assert tuple(r[r.family == "tiny"][["r", "d", "w"]].iloc[0]) == get_model_spec("tinynet_b").twist.as_tuple()
    assert r.flops_ratio.max() > 0.6
    with pytest.raises(ValueError, match="needs the fitted tiny formula"):
        tiny_vs_giant_trials([1], tiny="both", base_resolution=64, num_classes=10)
    with pytest.raises(ValueError, match="levels must be one of tinynet, c, got 'paper'"):
        tiny_vs_giant_trials([1], levels="paper", base_resolution=64, num_classes=10)
