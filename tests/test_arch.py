"""rubik.models.Arch: one value for a twisted architecture, and the facts only it derives.

Each "one place" test changes the single source (the px rule, the 24-px floor, the giant formula's
gamma, the base-resolution default, the named rule sets) and checks that every consumer follows:
a consumer that re-derives the fact by hand would keep the old value and fail here.
"""
import math
import warnings

import pytest

import rubik.cube as cube
from rubik.cube import Twist, giant_twist
from rubik.flops import analytic_flops, analytic_params, count_flops, count_params
from rubik.models import Arch, create_model, get_model_spec, input_resolution
from rubik.models import efficientnet as effnet
from rubik.models import registry

B0 = "efficientnet_b0"


def test_defaults_serialisation_and_validation_once():
    a = Arch(B0)
    assert (a.base_resolution, a.input_size, a.rules, a.blocks) == (224, 224, effnet.RULES["tinynet"], 16)
    assert Arch("ghostnet_a").input_size == 240 and Arch("resnet50").rules is None
    t = Arch.named("tinynet_c", base_resolution=64)
    assert t.twist == get_model_spec("tinynet_c").twist and t.input_size == int(64 * 0.825)
    for arch in (t, Arch(B0, (1.0, 1.2, 1.1), 240, "efficientnet"), Arch("ghostnet_a", (0.9, 0.8, 0.7), 96),
                 Arch(B0, (0.8, 1, 1), rules=effnet.Rules("ceil", fix_stem=True, head_floor=True))):
        d = arch.to_dict()
        assert set(d) == {"base", "twist", "base_resolution", "rules"}
        assert Arch.from_dict(d) == arch and Arch.from_any(d).input_size == arch.input_size
    assert Arch(B0, rules="efficientnet").to_dict()["rules"] == "efficientnet"
    # every problem is found when the value is made, with a message naming it
    for kwargs, match in [(dict(base="efficientnet_b9"), "unknown base"),
                          (dict(base="resnet50", rules="tinynet"), "only applies"),
                          (dict(base=B0, rules="bogus"), "unknown rules"),
                          (dict(base=B0, twist=(0.35, 1, 1), base_resolution=64), "22 px < 24"),
                          (dict(base=B0, twist=(1, 1, 0.01)), "zero channels"),
                          (dict(base=B0, base_resolution=0), "base_resolution")]:
        with pytest.raises(ValueError, match=match):
            Arch(**kwargs)
    with pytest.raises(ValueError, match="unknown Arch field"):
        Arch.from_dict({"base": B0, "px": 3})


def test_costs_and_build_agree_with_the_module():
    arch = Arch(B0, (0.7, 0.8, 0.6), 64, "efficientnet")
    m = arch.build(num_classes=10)
    assert m.arch == arch and m.resolution == arch.input_size == 44 and m.rules == "efficientnet"
    assert arch.params(10) == count_params(m) and arch.flops(10) == count_flops(m)
    assert create_model(arch.to_dict(), num_classes=10).resolution == arch.input_size
    with pytest.raises(ValueError, match="already has"):
        create_model(arch, twist=(1, 1, 1))


def test_tinynet_rules_are_named_options_as_in_timm():
    tiny, eff = effnet.RULES["tinynet"], effnet.RULES["efficientnet"]
    assert (tiny.depth_trunc, tiny.fix_stem, tiny.head_floor) == ("round", True, True)
    assert (eff.depth_trunc, eff.fix_stem, eff.head_floor) == ("ceil", False, False)
    narrow = (1, 0.5, 0.5)
    p_tiny, p_eff = Arch(B0, narrow).plan, Arch(B0, narrow, rules="efficientnet").plan
    assert (p_tiny.stem, p_tiny.head) == (32, 1280) and (p_eff.stem, p_eff.head) == (16, 640)
    assert p_tiny.repeats == (1, 1, 1, 2, 2, 2, 1) and p_eff.repeats == (1, 1, 1, 2, 2, 2, 1)
    assert Arch(B0, (1, 0.7, 1)).repeats != Arch(B0, (1, 0.7, 1), rules="efficientnet").repeats
    with pytest.raises(ValueError, match="depth_trunc"):
        effnet.Rules(depth_trunc="floor")


def test_rules_are_checked_in_one_place_the_family(monkeypatch):
    """A rule set added to the family's ``rules`` is accepted by every consumer; a hand-written
    ``rules in ("tinynet", "efficientnet")`` anywhere would refuse it."""
    from rubik.formula import matched_giant_phi
    from rubik.sampling import sample_twists

    mine = effnet.Rules("ceil", fix_stem=True, head_floor=False)
    monkeypatch.setitem(effnet.RULES, "mine", mine)
    arch = Arch(B0, (0.9, 0.7, 0.8), 64, "mine")
    assert arch.rules is mine and arch.to_dict()["rules"] == "mine"
    assert create_model(B0, 10, twist=arch.twist, base_resolution=64, rules="mine").rules == "mine"
    assert analytic_flops(B0, arch.twist, base_resolution=64, num_classes=10, rules="mine") == arch.flops(10)
    assert analytic_params(B0, arch.twist, num_classes=10, rules="mine") == arch.params(10)
    df = sample_twists(3, base_resolution=64, num_classes=10, rules="mine", include_references=False, seed=0)
    assert {a["rules"] for a in df.arch} == {"mine"}
    assert -4 < matched_giant_phi(B0, 0.3, base_resolution=64, num_classes=10, rules="mine") < 0
    assert registry.get_family("resnet50").rules == {}


def test_input_size_is_computed_in_one_place(monkeypatch):
    """``Twist.image_size`` is the only place px are computed: change it, and every consumer's
    px (and the FLOPs counted at them) change with it."""
    from rubik.formula import TinyFormula, derive_family, synthetic_frontier
    from rubik.sampling import sample_twists
    from rubik.study import _describe

    original = cube.Twist.image_size
    monkeypatch.setattr(cube.Twist, "image_size", lambda self, br: original(self, br) + 8)
    px = int(64 * 0.86) + 8
    assert Arch.named("tinynet_a", base_resolution=64).input_size == px
    assert create_model("tinynet_a", 10, base_resolution=64).resolution == px
    assert input_resolution("tinynet_a", base_resolution=64) == px
    assert get_model_spec("tinynet_a").resolution == int(224 * 0.86) + 8
    df = sample_twists(4, base_resolution=64, num_classes=10, seed=0)
    assert list(df.resolution) == [int(64 * r) + 8 for r in df.r]
    m = create_model(B0, 10, twist=(df.r[5], df.d[5], df.w[5]), base_resolution=64)
    assert count_flops(m) == df.flops[5]          # the FLOPs are counted at the patched px too
    assert _describe(B0, 0.5, 1, 1, base_resolution=64, num_classes=10, f0=1.0)["resolution"] == 40
    f = TinyFormula(base_resolution=64, num_classes=10).fit(synthetic_frontier(8, seed=0))
    fam = derive_family(f, {"x": 0.3}, giant=None, base_resolution=64, num_classes=10)
    assert fam.resolution[0] == int(64 * fam.r[0]) + 8


def test_the_24px_floor_lives_in_one_place(monkeypatch):
    """``rubik.cube.MIN_IMAGE_SIZE`` raised to 40 px moves every floor: Arch, the sampler's r range
    and references, and the giant formula's lowest phi."""
    from rubik.formula import matched_giant_phi
    from rubik.sampling import sample_twists

    monkeypatch.setattr(cube, "MIN_IMAGE_SIZE", 40)
    assert cube.min_resolution(64) == 40 / 64
    with pytest.raises(ValueError, match="< 40"):
        Arch(B0, (0.6, 1, 1), 64)                       # 38 px
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = sample_twists(6, base_resolution=64, num_classes=10, ranges={"r": (0.3, 1.0)}, seed=0)
    assert (df.r >= 40 / 64).all() and df.resolution.min() >= 40
    # giant_m3 (r = 0.658: 42 px) stays, giant_m4 (r = 0.572: 36 px) is skipped with a warning
    assert "giant_m3" in set(df.id) and "giant_m4" not in set(df.id)
    assert any("phi=-4" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="floor"):
        sample_twists(3, base_resolution=64, ranges={"r": (0.4, 0.6)})
    with pytest.raises(ValueError, match=r">= 40 px"):
        matched_giant_phi(B0, 0.05, base_resolution=64, num_classes=10)


def test_giant_gamma_lives_in_one_place(monkeypatch):
    """The lowest phi ``matched_giant_phi`` tries is where ``GIANT_GAMMA ** phi`` reaches the floor:
    with gamma patched, its error names that phi (a hard-coded 1.15 would land elsewhere)."""
    from rubik.formula import matched_giant_phi

    monkeypatch.setattr(cube, "GIANT_GAMMA", 1.3)
    assert giant_twist(-1).resolution == pytest.approx(1 / 1.3)
    lo = math.log(24 / 64) / math.log(1.3)
    with pytest.raises(ValueError, match=f"phi={lo:.2f}"):
        matched_giant_phi(B0, 0.01, base_resolution=64, num_classes=10)


def test_base_resolution_default_lives_in_one_place(monkeypatch):
    """``rubik.models.registry.BASE_RESOLUTION`` is the only default: change B0's to 96 px and
    every consumer that is not told a base resolution uses 96."""
    from rubik.formula import matched_giant_phi
    from rubik.sampling import sample_twists

    monkeypatch.setitem(registry.BASE_RESOLUTION, B0, 96)
    assert Arch(B0).input_size == 96 and Arch.named("tinynet_a").input_size == int(96 * 0.86)
    assert create_model("tinynet_a", 10).resolution == int(96 * 0.86)
    assert input_resolution(B0) == 96 and get_model_spec("tinynet_a").resolution == int(96 * 0.86)
    assert analytic_flops(B0, (0.5, 1, 1), num_classes=10) == Arch(B0, (0.5, 1, 1), 96).flops(10)
    df = sample_twists(2, num_classes=10, seed=0)
    assert set(df.base_resolution) == {96} and df.resolution[0] == 96
    assert (matched_giant_phi(B0, 0.5, num_classes=10)
            == matched_giant_phi(B0, 0.5, base_resolution=96, num_classes=10))


def test_a_sample_and_its_model_agree_by_construction():
    """The sample row carries its Arch; the model built from it has the row's px, params and FLOPs,
    rules included (a sample made with EfficientNet rules trains with them)."""
    from rubik.sampling import sample_twists

    df = sample_twists(4, base_resolution=64, num_classes=10, rules="efficientnet", seed=1)
    for row in df.itertuples():
        m = create_model(row.arch, num_classes=10)
        assert (m.resolution, count_params(m), m.rules) == (row.resolution, row.params, "efficientnet")
        assert Arch.from_dict(row.arch).flops(10) == row.flops


def test_train_config_carries_the_arch_and_trains_at_its_px():
    """``TrainConfig.arch`` is an Arch (stored as its dict); the input size of a run comes from
    the Arch, r included (it once fell back to ``base_resolution or 224``)."""
    from torch import nn

    from rubik.errors import ConfigError
    from rubik.train import TrainConfig, make_model, model_resolution, validate

    arch = Arch(B0, (0.7, 0.6, 0.5), 64, "efficientnet")
    cfg = TrainConfig(arch=arch)
    assert cfg.arch == arch and cfg.to_dict()["arch"] == arch.to_dict()
    assert TrainConfig(arch=arch.to_dict()).arch == arch == TrainConfig.from_dict(cfg.to_dict()).arch
    m = make_model(cfg, 10)
    assert (m.resolution, m.rules, count_params(m)) == (arch.input_size, "efficientnet", arch.params(10))
    named = TrainConfig(arch=Arch.named("tinynet_a", base_resolution=64))
    assert model_resolution(nn.Linear(2, 2), named) == int(64 * 0.86)     # a given model without .resolution
    # the layout before arch: a name + twist + base_resolution, converted where it is read
    old = TrainConfig.from_dict({"model": B0, "twist": [0.7, 0.6, 0.5], "base_resolution": 64, "epochs": 3})
    assert old.arch == Arch(B0, (0.7, 0.6, 0.5), 64) and old.recipe.epochs == 3 == old.epochs
    with pytest.raises(ConfigError, match="own twist"):
        TrainConfig.from_dict({"model": arch.to_dict(), "base_resolution": 64})
    with pytest.raises(ConfigError, match="22 px < 24"):
        TrainConfig.from_dict({"model": B0, "twist": [0.35, 1, 1], "base_resolution": 64})
    with pytest.raises(ConfigError, match="unknown base"):
        validate(TrainConfig(arch={"base": "nope"}))


def test_a_sweep_trains_its_samples_arch_and_old_specs_still_load(tmp_path):
    """sample row -> sweep.json -> trial config -> model: the px, params and rules of the row, by
    construction. A spec written before rows carried an Arch trains as it always did, and
    re-initialising it from today's rows is still a no-op."""
    import json

    from rubik import sweep as S
    from rubik.sampling import sample_twists
    from rubik.train import TrainConfig, make_model

    df = sample_twists(2, base_resolution=64, num_classes=10, rules="efficientnet", seed=0)
    d = tmp_path / "new"
    S.init_sweep(d, df, {"model": B0, "twist": None, "base_resolution": 224, "data": {}})
    spec = S.load_spec(d)
    for row, trial in zip(df.itertuples(), spec["trials"]):
        cfg = S.trial_config(spec, trial)
        assert cfg["arch"] == row.arch and "twist" not in cfg   # the template's 224 is not used
        m = make_model(TrainConfig.from_dict(cfg), 10)
        assert (m.resolution, count_params(m), m.rules) == (row.resolution, row.params, "efficientnet")
        assert S.trial_arch(trial) == Arch.from_dict(row.arch)
    # an old spec: rows without "arch"
    old = tmp_path / "old"
    S.init_sweep(old, df.drop(columns=["arch"]), {"model": B0, "data": {}})
    cfg = S.trial_config(S.load_spec(old), S.load_spec(old)["trials"][1])
    assert cfg["arch"] == Arch(B0, (df.r[1], df.d[1], df.w[1]), 64).to_dict() and "model" not in cfg
    before = (old / "sweep.json").read_text()
    S.init_sweep(old, df, {"model": B0, "data": {}})     # today's rows, with arch: the same trials
    assert (old / "sweep.json").read_text() == before
    assert list(S.load_results(old).resolution) == list(df.resolution)
    with pytest.raises(Exception, match="different trials"):
        S.init_sweep(old, df.assign(w=df.w * 0.9), {"model": B0, "data": {}})
    bad = df.copy()
    bad.at[0, "arch"] = dict(df.arch[0], base_resolution=16)
    with pytest.raises(Exception, match="trial base: .*16 px < 24"):
        S.init_sweep(tmp_path / "bad", bad, {"model": B0, "data": {}})
    assert json.loads((d / "sweep.json").read_text())["trials"][0]["arch"]["rules"] == "efficientnet"


def test_tiny_vs_giant_rows_carry_their_arch_and_the_floor(monkeypatch):
    from rubik.tiny_vs_giant import tiny_vs_giant_trials

    rows = tiny_vs_giant_trials([2], base_resolution=64, num_classes=10)
    for row in rows.itertuples():
        arch = Arch.from_dict(row.arch)
        assert (arch.input_size, arch.flops(10), arch.params(10)) == (row.resolution, row.flops, row.params)
    monkeypatch.setattr(cube, "MIN_IMAGE_SIZE", 56)       # TinyNet-C at 64 px: 52 px
    with pytest.raises(ValueError, match="TinyNet-C: .*52 px < 56 at base_resolution 64"):
        tiny_vs_giant_trials([2], base_resolution=64, num_classes=10)


def test_committed_sweeps_agree_with_their_arch():
    """Every committed trial (specs written before rows carried an Arch included): the px and stage
    plan in its row are its Arch's, and its record's model was trained at those px, so
    ``load_results``' rule for clashing columns (the sample's win) never has to decide anything."""
    import json
    from pathlib import Path

    from rubik.sweep import trial_arch

    root = Path(__file__).resolve().parents[1]
    specs = sorted(root.glob("data/results/**/sweep.json")) + sorted(root.glob("runs/**/sweep.json"))
    records = 0
    for path in specs:
        for t in json.loads(path.read_text())["trials"]:
            arch = trial_arch(t)
            assert arch.input_size == t["resolution"], (path, t["id"])
            if t.get("repeats"):
                assert (t["repeats"], t["channels"]) == (",".join(map(str, arch.repeats)),
                                                         ",".join(map(str, arch.channels))), (path, t["id"])
            rec = path.parent / "trials" / f"{t['id']}.json"
            if rec.is_file():
                px = (json.loads(rec.read_text()).get("metrics") or {}).get("resolution")
                assert px in (None, t["resolution"]), (rec, px)
                records += px is not None
    assert len(specs) >= 5 and records >= 100


def test_sweep_cli_rules_reach_the_trials(tmp_path, capsys):
    from rubik import sweep as S
    from rubik.cli import main

    d = tmp_path / "sw"
    assert main(["sweep", "init", str(d), "--n", "2", "--no-references", "--base-resolution", "64",
                 "--num-classes", "10", "--rules", "efficientnet"]) == 0
    spec = S.load_spec(d)
    assert {t["arch"]["rules"] for t in spec["trials"]} == {"efficientnet"}
    assert S.trial_config(spec, spec["trials"][0])["arch"]["rules"] == "efficientnet"
    capsys.readouterr()
    assert main(["sweep", "init", str(tmp_path / "bad"), "--n", "2", "--rules", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rubik sweep init: error:") and "unknown rules 'bogus'" in err and "\n" not in err
