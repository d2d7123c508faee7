import numpy as np
import pandas as pd
import pytest

from rubik.sampling import DEFAULT_RANGES, sample_twists
from rubik.sweep import sample_twists as exported

COLUMNS = ["id", "kind", "base", "base_resolution", "r", "d", "w", "phi", "resolution", "repeats",
           "channels", "params", "flops", "flops_ratio", "sample_seed", "arch"]


def test_reproducible_and_exported():
    a = sample_twists(12, seed=3)
    b = exported(12, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = sample_twists(12, seed=4)
    assert not np.allclose(a.r.to_numpy(), c.r.to_numpy())


def test_bounds_columns_and_references():
    df = sample_twists(30, seed=0)
    assert list(df.columns) == COLUMNS
    assert list(df.kind[:5]) == ["base", "giant", "giant", "giant", "giant"]
    assert list(df.id[:5]) == ["base", "giant_m1", "giant_m2", "giant_m3", "giant_m4"]
    assert list(df.phi[1:5]) == [-1, -2, -3, -4]
    base = df.iloc[0]
    assert (base.r, base.d, base.w, base.flops_ratio, base.resolution) == (1, 1, 1, 1, 224)
    assert base.repeats == "1,2,2,3,3,4,1" and base.channels == "16,24,40,80,112,192,320"
    rnd = df[df.kind == "random"]
    assert len(rnd) == 30 and df.id.is_unique
    assert rnd.flops_ratio.between(0.05, 1.0).all() and (df.flops_ratio <= 1).all()
    for k in "rdw":
        lo, hi = DEFAULT_RANGES[k]
        assert rnd[k].between(lo, hi).all()
    assert (df.flops == (df.flops_ratio * base.flops).round()).all()
    assert not df[["resolution", "repeats", "channels"]].duplicated().any()  # no network twice
    assert (df.params > 0).all()


def test_stratified_covers_every_octave():
    df = sample_twists(10, mode="stratified", include_references=False, seed=1)
    counts = np.histogram(df.flops_ratio, bins=[0.05, 0.1, 0.2, 0.4, 0.8, 1.0])[0]
    assert list(counts) == [2, 2, 2, 2, 2]


def test_resolution_floor_at_proxy_base():
    df = sample_twists(15, base_resolution=64, num_classes=10, ranges={"resolution": (0.2, 1.0)}, seed=2)
    assert (df.r >= 24 / 64).all() and (df.resolution >= 24).all() and (df.base_resolution == 64).all()
    assert df.resolution.min() < 32     # the floor is MIN_IMAGE_SIZE = 24 px, not 32
    assert df.iloc[0].resolution == 64
    with pytest.raises(ValueError, match="floor"):
        sample_twists(5, base_resolution=64, ranges={"r": (0.2, 0.35)})
    with pytest.raises(ValueError, match="16 px < 24"):
        sample_twists(5, base_resolution=16)


def test_other_bases():
    g = sample_twists(5, "ghostnet_a", seed=0)
    assert g.iloc[0].resolution == 240 and g.iloc[0].kind == "base" and (g.flops_ratio <= 1).all()
    pytest.importorskip("rubik.models.resnet")
    r = sample_twists(5, "resnet50", seed=0)
    assert (r.flops_ratio <= 1).all() and r.iloc[0].resolution == 224
    assert r.iloc[0].repeats == "3,4,6,3" and r.iloc[0].channels == "256,512,1024,2048"


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown base model 'efficientnet_b9'"):
        sample_twists(5, "efficientnet_b9")
    with pytest.raises(ValueError, match="unknown mode"):
        sample_twists(5, mode="sobol")
    with pytest.raises(ValueError, match="above the base"):
        sample_twists(5, c_max=1.5)
    with pytest.raises(ValueError, match="unknown dial"):
        sample_twists(5, ranges={"x": (0.1, 1)})
    with pytest.raises(ValueError, match="lo <= hi"):
        sample_twists(5, ranges={"d": (1.0, 0.5)})
    with pytest.raises(ValueError, match="not reachable"):
        sample_twists(5, mode="stratified", ranges={"r": (0.9, 1.0), "d": (0.9, 1.0), "w": (0.9, 1.0)},
                      max_draws=300)
