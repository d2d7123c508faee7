"""The tiny formula on other bases (issue 33): the ResNet-26 base and the ResNet row's design, the
GhostNet and ResNet plans as code (rubik.base_transfer_stats) on fake cells, the report on a fake
finished GhostNet study and the accuracy-vs-FLOPs figure."""
import numpy as np
import pandas as pd
import pytest

from rubik import base_transfer_stats as BT
from rubik import study_stats as SS
from rubik.errors import ConfigError

from test_study_stats import _cells


# ----------------------------------------------------------------------------- ResNet-26 and the ResNet row

def test_resnet26_has_resnet50s_stages_and_its_flops_are_ptflops():
    from rubik.flops import analytic_flops, count_flops
    from rubik.models import Arch, create_model

    a, b = Arch("resnet26", base_resolution=64), Arch("resnet50", base_resolution=64)
    assert a.plan.layers == (2, 2, 2, 2) and a.plan.widths == b.plan.widths and a.plan.stem == b.plan.stem
    assert Arch("resnet26", (1, 0.5, 1)).plan.layers == (1, 1, 1, 1)
    assert round(a.flops(10) / 1e6, 1) == 191.1 and round(b.flops(10) / 1e6, 1) == 333.7
    m = create_model("resnet26", num_classes=10, twist=(0.8, 1.4, 0.6), base_resolution=64)
    assert analytic_flops("resnet26", (0.8, 1.4, 0.6), num_classes=10, base_resolution=64) == count_flops(m)


def test_resnet_row_design_puts_every_family_at_the_giants_flops():
    from rubik.preset import load_preset
    from rubik.study import study_design

    cfg = load_preset("resnet_row")
    assert (cfg["base"], cfg["base_resolution"]) == ("resnet26", 64)
    assert cfg["recipe"]["name"] == "proxy_resnet" and cfg["study"]["cost_mflop_scale"] == 0.25
    design = study_design(cfg["study"], base="resnet26", base_resolution=64, num_classes=10)
    assert len(design) == 24 and set(design.family) == {"tiny", "ours", "giant", "width"}
    assert set(design.epochs) == {20} and set(design.seed) == {0, 1, 2}
    for level, cell in design.drop_duplicates("name").groupby("level"):
        giant = cell[cell.family == "giant"].iloc[0]
        assert (abs(cell.flops / giant.flops - 1) <= 0.04).all()
        # the cells are the ones the plan reads
        assert set(cell.name) == {BT.resnet_cell(f, level)[0] for f in ("tiny", "ours", "giant", "width")}
    assert design.drop_duplicates("name").groupby("level").flops_ratio.mean().round(2).tolist() == [0.40, 0.25]
    with pytest.raises(ConfigError, match="Bottleneck ResNet base"):
        study_design(cfg["study"], base="efficientnet_b0", base_resolution=64, num_classes=10)
    bad = {"parts": [{"resnet": ["tiny"], "levels": ["b"], "epochs": [1], "seeds": [0]}]}
    with pytest.raises(ConfigError, match="levels' among"):
        study_design(bad, base="resnet26", base_resolution=64, num_classes=10)


def test_ghostnet_plan_reads_the_cells_the_preset_makes():
    from rubik.preset import load_preset
    from rubik.study import study_design

    cfg = load_preset("ghostnet_appendix")
    design = study_design(cfg["study"], base="ghostnet_a", base_resolution=53, num_classes=10)
    planned = {BT.ghostnet_cell(f, lv)[0] for f in ("recon", "width", "giant", "ours", "width_a") for lv in "bcd"}
    assert set(design.name) == planned


# ----------------------------------------------------------------------------- the plans on fake cells

def _ghost_spec(shift=0.0):
    acc = {"recon": 0.80, "width": 0.70, "giant": 0.75, "ours": 0.76, "width_a": 0.72}
    return {BT.ghostnet_cell(f, lv): [a - 0.05 * i + shift + 0.01 * s for s in (0, 1, 2)]
            for f, a in acc.items() for i, lv in enumerate("bcd")}


def test_ghostnet_estimands_are_the_plans_contrasts():
    cells = _cells(_ghost_spec())
    pooled = SS.pooled_variance(cells)
    boot = SS.Bootstrap(cells, n=500)
    t = BT.ghostnet_estimands(cells, boot, pooled)
    assert len(t) == 18 and (t.family == "A").sum() == 9
    by = t.set_index(["contrast", "level"])
    for (est, a, b) in (("A_width", "recon", "width"), ("A_giant", "recon", "giant"), ("A_ours", "ours", "giant"),
                        ("S_dials", "recon", "width_a"), ("S_base", "width_a", "width"), ("S_ours", "ours", "recon")):
        for lv in "BCD":
            want = cells.mean(BT.ghostnet_cell(a, lv)) - cells.mean(BT.ghostnet_cell(b, lv))
            assert by.loc[(est, lv), "theta"] == pytest.approx(want)
    # Holm over the 9 primary tests only, on the conservative p; no decision on the secondary ones
    prim = t[t.family == "A"]
    assert np.allclose(prim.holm_p, SS.holm(prim.cons_p)) and t[t.family == ""].holm_p.isna().all()
    assert set(t[t.family == ""].decision) == {""}
    assert by.loc[("A_width", "B"), "decision"] in ("the reconstruction beats width-only", "not decided")
    # 10 points apart with 1-point seed noise: decided
    assert by.loc[("A_width", "B"), "decision"] == "the reconstruction beats width-only"
    # the smallest detectable difference: the plan's numbers (0.81 points, 3 seeds, alpha / 9 and alpha)
    assert by.loc[("A_width", "B"), "mdd"] == pytest.approx(4.22, abs=0.01)
    assert by.loc[("S_dials", "B"), "mdd"] == pytest.approx(2.46, abs=0.01)
    assert np.isfinite(by.loc[("A_width", "B"), "mdd_measured"])


def test_missing_cells_are_not_measured_and_resnet_plan():
    spec = _ghost_spec()
    del spec[BT.ghostnet_cell("width", "d")]
    cells = _cells(spec)
    t = BT.ghostnet_estimands(cells, SS.Bootstrap(cells, n=200), SS.pooled_variance(cells))
    row = t.set_index(["contrast", "level"]).loc[("A_width", "D")]
    assert np.isnan(row.theta) and row.decision == "not yet measured"
    acc = {"tiny": 0.70, "ours": 0.60, "giant": 0.70, "width": 0.65}
    cells = _cells({BT.resnet_cell(f, lv): [a + 0.005 * s for s in (0, 1, 2)] for f, a in acc.items() for lv in (1, 2)})
    t = BT.resnet_estimands(cells, SS.Bootstrap(cells, n=300), SS.pooled_variance(cells))
    assert len(t) == 10 and (t.family == "R").sum() == 6
    by = t.set_index(["contrast", "level"])
    assert by.loc[("R_ours", "1"), "theta"] == pytest.approx(-10.0, abs=0.3)
    assert by.loc[("R_ours", "1"), "decision"] == "our formula loses to the giant"
    assert by.loc[("R_giant", "2"), "decision"] == "not decided"
    assert by.loc[("S_giant", "2"), "theta"] == pytest.approx(5.0, abs=0.3)
    assert set(BT.base_transfer_estimands(cells, SS.Bootstrap(cells, n=50), SS.pooled_variance(cells))) == {"resnet"}


# ----------------------------------------------------------------------------- the report and the figure

def fake_train(cfg: dict) -> dict:
    """Per-image outcomes at a hit rate that rises with FLOPs (deterministic per trial)."""
    from rubik.data import pack_correct
    from rubik.models import Arch

    arch = Arch.from_dict(cfg["arch"])
    p = min(0.9, 0.3 + 0.02 * arch.flops(10) / 1e6)
    rng = np.random.default_rng([int(arch.flops(10)) % 100_000, cfg["seed"]])
    labels = np.repeat(np.arange(10), 40)
    correct = rng.random(len(labels)) < p
    return {"top1": 100 * correct.mean(), "epochs": cfg["recipe"]["epochs"], "val_correct": pack_correct(correct, labels)}


def _fake_ghostnet_study(tmp_path, seeds=(0, 1)):
    from rubik import launcher as L
    from rubik import sweep as S
    from rubik.preset import load_preset
    from rubik.study import study_design

    study = dict(load_preset("ghostnet_appendix")["study"])
    study["parts"] = [dict(p, seeds=list(seeds)) for p in study["parts"]]
    design = study_design(study, base="ghostnet_a", base_resolution=53, num_classes=10)
    d = tmp_path / "ghost"
    S.init_sweep(d, design, {"model": "ghostnet_a", "data": {}, "recipe": "proxy", "epochs": 20, "seed": 0})
    L.run_worker(d, train_fn=fake_train, heartbeat=0)
    return d


def test_report_on_a_fake_finished_ghostnet_study(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from rubik.study import report

    d = _fake_ghostnet_study(tmp_path)
    printed = []
    tables = report(d, copy_figures_to=tmp_path / "top", show=printed.append)
    t = tables["prereg_ghostnet"]
    assert len(t) == 18 and t.theta.notna().all() and "prereg_ghostnet_cpu" in tables
    assert "prereg_depth" not in tables and "study_gains" not in tables   # no B0 plan on a GhostNet study
    assert (d / "tables" / "prereg_ghostnet.md").is_file()
    assert len(tables["study_ghostnet"]) == 15 and (tables["study_ghostnet"]["n"] == 2).all()
    text = "\n".join(printed)
    assert "pre-registered ghostnet analysis on test, all records" in text and "A_width(B): recon - width" in text
    assert (tmp_path / "top" / "fig_study_ghostnet_flops.png").is_file()


def test_accuracy_flops_figure_reads_cleanly():
    import matplotlib

    matplotlib.use("Agg")
    from rubik import plots
    from rubik.study_report import _appendix_points

    rows = []
    for i, fam in enumerate(("recon", "width", "giant", "ours", "width_a")):
        for lv, mf in zip((1, 2, 3), (22.4, 12.4, 3.3)):
            for s in (0, 1, 2):
                rows.append(dict(experiment="ghostnet", family=fam, level=lv, seed=s, flops=mf * 1e6 * (1 + 0.004 * i),
                                 base="ghostnet_a", base_resolution=53,
                                 top1_test=60 + 4 * np.log2(mf) + i - 0.5 * s + (lv == 3) * (s == 2)))
    res = pd.DataFrame(rows)
    paper = _appendix_points()
    assert set(paper.family) == {"recon", "width"} and len(paper) == 7
    fig = plots.plot_base_accuracy_flops(res, paper=paper)
    assert len(fig.axes) == 2 and plots.layout_problems(fig) == []
    # a partial run (one seed somewhere) and no paper panel (the ResNet row)
    fig = plots.plot_base_accuracy_flops(res[(res.seed == 0) | (res.family != "ours")].replace({"ghostnet": "resnet"}))
    assert len(fig.axes) == 1 and plots.layout_problems(fig) == []
