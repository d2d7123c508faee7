"""GhostNet-B/C/D reconstructed from appendix Table 1 (rubik.ghostnet_family) and their peers."""
import csv
from pathlib import Path

import pytest

from rubik.cube import Twist, giant_twist
from rubik.flops import analytic_flops, analytic_params, count_flops, count_params
from rubik.ghostnet_family import (APPENDIX_TABLE1, LEVELS, SearchSpace, candidates, giant_peer, reconstruct,
                                   reconstruct_all, summary, width_peer, width_steps)
from rubik.models import Arch, create_model, get_model_spec, list_models
from rubik.models.registry import (GHOSTNET_A_WIDTH_ONLY, GHOSTNET_GIANT_PHI, GHOSTNET_WIDTH_ONLY, RECONSTRUCTED)

PAPER = Path(__file__).resolve().parents[1] / "data" / "paper"
NEW = [n for k in "bcd" for n in (f"ghostnet_{k}", f"ghostnet_{k}_hswish", f"ghostnet_a_giant_{k}",
                                  f"ghostnet_width_{k}", f"ghostnet_a_width_{k}")]


@pytest.fixture(scope="module")
def recs():
    return reconstruct_all()


def test_appendix_numbers_are_table_1():
    rows = {r["model"]: r for r in csv.DictReader(open(PAPER / "ghostnet_table1.csv"))}
    for level, v in APPENDIX_TABLE1.items():
        row = rows[f"GhostNet-{level[-1].upper()}"]
        assert float(row["params_m"]) * 1e6 == v["params"] and float(row["flops_m"]) * 1e6 == v["flops"]


def test_reconstruction_rederived_from_the_appendix(recs):
    """The committed rule, run on the appendix's two numbers per model, gives the registered dials."""
    for level, rec in recs.items():
        assert rec.twist == Twist(*RECONSTRUCTED[level]) == get_model_spec(level).twist
        arch = Arch.named(level)
        p, f = arch.params(), arch.flops()
        assert p == pytest.approx(APPENDIX_TABLE1[level]["params"], rel=0.02)
        assert f == pytest.approx(APPENDIX_TABLE1[level]["flops"], rel=0.02)
        # the choice is the first of the eligible candidates in the rule's order
        best = rec.ranked.iloc[0]
        assert (best.px, best.blocks, best.params, best.flops) == (arch.input_size, arch.blocks, p, f)
        assert rec.ranked.distance.is_monotonic_increasing
        assert len(rec.candidates) >= 100   # the two numbers leave many networks: the rule decides
    b, c, d = (recs[k] for k in LEVELS)
    assert b.chosen["distance"] == 0          # TinyNet's r(c), d(c) itself builds a GhostNet-B
    assert c.chosen["distance"] > 0 and d.chosen["distance"] > 0   # ... but no GhostNet-C or -D


def test_committed_provenance_matches(recs):
    rows = list(csv.DictReader(open(PAPER / "ghostnet_reconstruction.csv")))
    s = summary(recs)
    assert [r["name"] for r in rows] == list(LEVELS)
    for r, (_, x) in zip(rows, s.iterrows()):
        assert (float(r["r"]), float(r["d"]), float(r["w"])) == (x.r, x.d, x.w)
        assert (int(r["px"]), int(r["blocks"]), int(r["params"]), int(r["flops"])) == (x.px, x.blocks, x.params,
                                                                                        x.flops)
        assert int(r["n_candidates"]) == x.n_candidates
        assert "Appendix Table 1" in r["source"]
    cands = list(csv.DictReader(open(PAPER / "ghostnet_reconstruction_candidates.csv")))
    assert len(cands) == sum(len(x.candidates) for x in recs.values())
    assert sum(r["chosen"] == "True" for r in cands) == 3


def test_candidates_are_within_tolerance_and_exact(recs):
    for level, rec in recs.items():
        t = APPENDIX_TABLE1[level]
        cands = rec.candidates
        assert (cands.params_resid.abs() <= 0.02).all() and (cands.flops_resid.abs() <= 0.02).all()
        for _, x in cands.sample(5, random_state=0).iterrows():   # the real, rounded network as built
            a = Arch("ghostnet_a", Twist(x.r, x.d, x.w))
            assert (a.input_size, a.blocks, a.params(), a.flops()) == (x.px, x.blocks, x.params, x.flops)
            assert x.params_resid == pytest.approx(x.params / t["params"] - 1)


def test_width_steps_are_exact():
    steps = width_steps("ghostnet_a", 0.2, 1.0)
    plans = [Arch("ghostnet_a", Twist(1, 1, w)).plan for _, _, w in steps]
    assert all(a != b for a, b in zip(plans, plans[1:]))      # one plan per step
    for lo, hi, w in steps[::50]:                             # the whole step builds it
        assert lo <= w < hi + 1e-7
        assert Arch("ghostnet_a", Twist(1, 1, 0.5 * (lo + hi))).plan == Arch("ghostnet_a", Twist(1, 1, w)).plan


def test_a_narrower_search_finds_the_same_choice():
    """The choice does not hinge on the search box's edges."""
    rec = reconstruct("ghostnet_c", space=SearchSpace(d_max=1.2, w_min=0.4, px_min=120))
    assert rec.twist == Twist(*RECONSTRUCTED["ghostnet_c"])


@pytest.mark.parametrize("name", NEW)
def test_analytic_equals_ptflops_on_new_models(name):
    assert name in list_models()
    m = create_model(name)
    assert analytic_flops(name) == count_flops(m)
    assert analytic_params(name) == count_params(m)


def test_peers_match_the_reconstructions_flops():
    for level, t in RECONSTRUCTED.items():
        k = level[-1]
        assert giant_peer(Twist(*t)) == GHOSTNET_GIANT_PHI[k]
        assert width_peer(Twist(*t)) == GHOSTNET_WIDTH_ONLY[k]
        assert width_peer(Twist(*t), "ghostnet_a") == GHOSTNET_A_WIDTH_ONLY[k]
        f = analytic_flops(level)
        assert get_model_spec(f"ghostnet_a_giant_{k}").twist == giant_twist(GHOSTNET_GIANT_PHI[k])
        assert Arch.named(f"ghostnet_width_{k}").input_size == 224
        for peer in (f"ghostnet_width_{k}", f"ghostnet_a_width_{k}"):
            assert analytic_flops(peer) == pytest.approx(f, rel=0.05)
        # the giant staircase is coarse (r, d, w move together): nearest step within 10 %
        assert analytic_flops(f"ghostnet_a_giant_{k}") == pytest.approx(f, rel=0.1)


def test_hswish_variants():
    from torch import nn

    for k in "bcd":
        m = create_model(f"ghostnet_{k}_hswish")
        assert any(isinstance(x, nn.Hardswish) for x in m.modules())
        assert m.arch == Arch.named(f"ghostnet_{k}")


def test_bad_level_or_base_is_one_line_error(capsys):
    with pytest.raises(ValueError, match=r"unknown GhostNet level 'ghostnet_e'; expected one of ghostnet_b"):
        reconstruct("ghostnet_e")
    with pytest.raises(ValueError, match=r"defined on base 'ghostnet_a' only"):
        reconstruct("ghostnet_b", base="efficientnet_b0")
    with pytest.raises(ValueError, match=r"params and FLOPs must be positive"):
        candidates(0, 1e8)
    from rubik.cli import main

    for argv in (["ghostnet", "--level", "ghostnet_e"], ["ghostnet", "--base", "resnet50"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rubik ghostnet: error: ") and "\n" not in err


def test_ghostnet_study_design():
    """The ghostnet_appendix preset's design: every peer at the reconstruction's real FLOPs (53 px base)."""
    from rubik.errors import ConfigError
    from rubik.preset import load_preset
    from rubik.study import study_design

    cfg = load_preset("ghostnet_appendix")
    assert (cfg["base"], cfg["base_resolution"]) == ("ghostnet_a", 53)
    design = study_design(cfg["study"], base="ghostnet_a", base_resolution=53, num_classes=10)
    assert len(design) == 45 and set(design.family) == {"recon", "giant", "width", "width_a", "ours"}
    assert set(design.epochs) == {20} and set(design.seed) == {0, 1, 2}
    for level, cell in design.drop_duplicates("name").groupby("level"):
        recon = cell[cell.family == "recon"].iloc[0]
        assert recon.arch["twist"] == list(RECONSTRUCTED["ghostnet_" + "bcd"[level - 1]])
        assert (abs(cell.flops / recon.flops - 1) <= 0.02).all()
        width = cell[cell.family == "width"].iloc[0]
        assert (width.base, width.base_resolution, width.arch["base"]) == ("ghostnet_100", 49, "ghostnet_100")
    bad = {"parts": [{"ghostnet": ["recon", "nope"], "levels": ["b"], "epochs": [1], "seeds": [0]}]}
    with pytest.raises(ConfigError, match=r"unknown ghostnet families \['nope'\]"):
        study_design(bad, base="ghostnet_a", base_resolution=53, num_classes=10)
    bad = {"parts": [{"ghostnet": ["recon"], "levels": ["e"], "epochs": [1], "seeds": [0]}]}
    with pytest.raises(ConfigError, match=r"levels' among \['b', 'c', 'd'\]"):
        study_design(bad, base="ghostnet_a", base_resolution=53, num_classes=10)
    with pytest.raises(ConfigError, match=r"need the preset's base 'ghostnet_a'"):
        study_design({"parts": [{"ghostnet": ["recon"], "levels": ["b"], "epochs": [1], "seeds": [0]}]},
                     base="efficientnet_b0", base_resolution=64, num_classes=10)
