"""The cube's value type: validation, conversions, image size, giant formula."""
import math

import pytest

from rubik.cube import GIANT_ALPHA, GIANT_BETA, GIANT_GAMMA, MAX_DIAL, Twist, giant_twist, min_resolution


def test_defaults_and_tuple():
    t = Twist()
    assert t.as_tuple() == (1.0, 1.0, 1.0)
    t = Twist(0.86, 1.2, 1.0)
    assert (t.r, t.d, t.w) == (0.86, 1.2, 1.0)
    assert isinstance(t.width, float)


@pytest.mark.parametrize("dial", ["resolution", "depth", "width"])
@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), MAX_DIAL * 1.01, "abc", None])
def test_bad_dials_name_the_dial(dial, bad):
    with pytest.raises(ValueError, match=dial):
        Twist(**{dial: bad})


def test_frozen():
    with pytest.raises(Exception):
        Twist().width = 2.0


def test_from_any():
    assert Twist.from_any((0.5, 0.6, 0.7)) == Twist(0.5, 0.6, 0.7)
    assert Twist.from_any([0.5, 0.6, 0.7]) == Twist(0.5, 0.6, 0.7)
    assert Twist.from_any({"resolution": 0.5, "depth": 0.6, "width": 0.7}) == Twist(0.5, 0.6, 0.7)
    assert Twist.from_any({"r": 0.5, "w": 0.7}) == Twist(0.5, 1.0, 0.7)
    t = Twist(0.5, 0.6, 0.7)
    assert Twist.from_any(t) is t
    assert Twist.from_any(None) == Twist()
    for bad in [(1, 2), (1, 2, 3, 4), "1,1,1", {"height": 1}, 3.0]:
        with pytest.raises(ValueError):
            Twist.from_any(bad)


def test_image_size():
    # TinyNet input sizes (timm cfgs: int(224 * r))
    for r, px in [(0.86, 192), (0.84, 188), (0.825, 184), (0.68, 152), (0.475, 106), (1.0, 224)]:
        assert Twist(r, 1, 1).image_size(224) == px
    assert Twist(0.5).image_size(64) == 32
    with pytest.raises(ValueError, match="resolution"):
        Twist(0.35).image_size(64)  # 22 px < MIN_IMAGE_SIZE (24)
    with pytest.raises(ValueError, match="resolution"):
        Twist(0.1).image_size(224)  # 22 px
    assert min_resolution(64) == 24 / 64


def test_giant_twist():
    assert GIANT_ALPHA * GIANT_BETA**2 * GIANT_GAMMA**2 == pytest.approx(1.92, abs=0.01)
    t = giant_twist(-4)
    assert t.as_tuple() == pytest.approx((0.572, 0.482, 0.683), abs=1e-3)  # EfficientNet: r, d, w = 1.15, 1.2, 1.1 ** phi
    assert giant_twist(-1).as_tuple() == pytest.approx((0.870, 0.833, 0.909), abs=1e-3)
    assert giant_twist(0) == Twist()
    assert giant_twist(1).depth == pytest.approx(1.2)
    with pytest.raises(ValueError):
        giant_twist(math.nan)
    with pytest.raises(ValueError, match="resolution|depth|width"):
        giant_twist(-10000)  # dials underflow to 0
