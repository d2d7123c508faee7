"""rubik.study: depth in blocks, the decisive experiments' design, and the sweep it creates."""
import json

import numpy as np
import pytest

from rubik import study as St
from rubik import launcher as L
from rubik import rundir as RD
from rubik import sweep as S

B0 = "efficientnet_b0"


def test_depth_in_blocks_and_its_floor():
    assert St.total_blocks(B0, 1.0) == 16                       # (1, 2, 2, 3, 3, 4, 1)
    assert St.total_blocks(B0, 0.2) == St.total_blocks(B0, 0.37) == 7
    n, d_max = St.depth_floor(B0)
    assert n == 7 and 0.37 <= d_max < 0.38                       # every d below ~0.375 builds 7 blocks
    assert St.total_blocks(B0, d_max + 0.002) > 7
    for b in (7, 10, 13, 16):
        assert St.total_blocks(B0, St.depth_for_blocks(B0, b)) == b
    with pytest.raises(ValueError, match="reachable"):
        St.depth_for_blocks(B0, 6)


STUDY = dict(families_from="data/results/imagenette/tiny_vs_giant/seed0/sweep.json", levels=[2, 4],
             epochs=[5, 10, 20], seeds=[0, 1, 2], b0_epochs=[20], b0_seeds=[0, 1], ladder_level=2, ladder_epochs=20,
             ladder_seeds=[0, 1, 2], depth_ladder_blocks=[7, 10, 13, 16], depth_ladder_r=0.8,
             resolution_ladder_r=[0.6, 0.8, 1.0, 1.2], resolution_ladder_blocks=10)


def test_design_is_the_committed_families_and_two_ladders_at_equal_flops():
    from rubik.tiny_vs_giant import tiny_vs_giant_trials

    df = St.study_design(STUDY, base_resolution=64, num_classes=10)
    assert not df.id.duplicated().any()
    sched = df[df.experiment == "schedule"]
    # 3 families x 2 levels x 3 schedules x 3 seeds, + B0 at 20 epochs x 2 seeds
    assert len(sched) == 3 * 2 * 3 * 3 + 2
    assert sorted(sched[sched.family != "base"].groupby(["family", "level", "epochs"]).size().unique()) == [3]
    assert set(sched[sched.family == "base"].epochs) == {20} and len(sched[sched.family == "base"]) == 2
    # the giant and TinyNet models are what tiny_vs_giant_trials makes today (ours: the committed fit)
    ref = tiny_vs_giant_trials([2, 4], tiny="released", levels="c", base_resolution=64, num_classes=10)
    for _, t in ref.iterrows():
        got = sched[sched.name == t.id].iloc[0]
        assert (got.r, got.d, got.w, got.flops) == pytest.approx((t.r, t.d, t.w, t.flops))
    committed = {t["id"]: t for t in json.loads((St.REPO_ROOT / STUDY["families_from"]).read_text())["trials"]}
    ours = sched[sched.name == "ours_m2"].iloc[0]
    assert (ours.r, ours.d, ours.w) == (committed["ours_m2"]["r"], committed["ours_m2"]["d"], committed["ours_m2"]["w"])
    # ladders: 7 distinct rungs (the r=0.8, 10-block one is shared), all within 5 % of the level-2 giant's FLOPs
    lad = df[df.experiment == "ladder"]
    assert lad.name.nunique() == 7 and len(lad) == 21 and set(lad.epochs) == {20}
    giant = sched[sched.name == "giant_m2"].flops.iloc[0]
    assert np.allclose(lad.flops / giant, 1, atol=0.05)
    depth = lad[lad.depth_ladder].drop_duplicates("name")
    assert sorted(depth.blocks) == [7, 10, 13, 16] and set(depth.r) == {0.8}
    res = lad[lad.resolution_ladder].drop_duplicates("name")
    assert sorted(res.r) == [0.6, 0.8, 1.0, 1.2] and set(res.blocks) == {10}
    shared = lad[lad.depth_ladder & lad.resolution_ladder]
    assert set(shared.name) == {"r=0.8, 10 blocks"}
    # seed by seed (a sweep cut short stays balanced), largest cost first within a seed
    assert (np.diff(df.seed) >= 0).all()
    for _, sub in df.groupby("seed"):
        assert (np.diff((sub.flops * sub.epochs).to_numpy()) <= 0).all()
    c = St.design_cost(df, 1000, 32)
    assert c["trials"] == len(df) and c["steps"] == df.epochs.sum() * 31


def _longer_study():
    import yaml

    return yaml.safe_load((St.REPO_ROOT / "rubik/presets/imagenette_longer.yaml").read_text())["study"]


def test_longer_design_adds_40_and_80_epochs_to_the_same_models_in_priority_order():
    longer = St.study_design(_longer_study(), base_resolution=64, num_classes=10)
    long = St.study_design(STUDY, base_resolution=64, num_classes=10)
    assert len(longer) == 53 and not longer.id.duplicated().any()
    assert not set(longer.id) & set(long.id)          # one results table can hold both sweeps
    # the same models as the 5/10/20-epoch study: the dials of every shared name are identical
    ref = long.drop_duplicates("name").set_index("name")
    for _, t in longer.drop_duplicates("name").iterrows():
        assert (t.r, t.d, t.w, t.flops, t.blocks) == tuple(ref.loc[t["name"], ["r", "d", "w", "flops", "blocks"]])
    cells = longer.groupby(["experiment", "family", "epochs"]).size().to_dict()
    assert cells == {("ladder", "ladder", 40): 12, ("ladder", "ladder", 80): 6, ("schedule", "base", 40): 2,
                     **{("schedule", f, 20): 2 for f in ("giant", "tiny", "ours")},
                     **{("schedule", f, 40): 6 for f in ("giant", "tiny", "ours")},
                     **{("schedule", f, 80): 3 for f in ("giant", "tiny", "ours")}}
    assert set(longer[(longer.experiment == "ladder") & (longer.epochs == 80)].blocks) == {7, 16}
    assert set(longer[(longer.epochs == 20)].seed) == {3, 4}
    # seed 0 of every cell first, then seed 1, ...; within a seed the parts in the preset's order
    assert (np.diff(longer.seed) >= 0).all()
    assert set(longer[longer.seed == 0].name) | {"giant_m2", "tiny_m2", "ours_m2"} == set(longer.name)
    first = longer[longer.seed == 0].reset_index(drop=True)
    assert list(first.epochs[:2]) == [80, 80] and set(first.experiment[:6]) == {"ladder"}
    assert first.iloc[-1]["name"] == "EfficientNet-B0"
    assert longer.id.iloc[0] == "ladder_r0.80_b07_e80_s0"


def test_bad_study_parts_are_clear_errors():
    study = _longer_study()
    for part, match in [({"epochs": [40], "seeds": [0], "famlies": ["giant"]}, "unknown key"),
                        ({"families": ["giant"], "levels": [2], "seeds": [0]}, "epochs"),
                        ({"families": ["gaint"], "levels": [2], "epochs": [5], "seeds": [0]}, "unknown families"),
                        ({"families": ["giant"], "epochs": [5], "seeds": [0]}, "levels"),
                        ({"b0": True, "epochs": [0], "seeds": [0]}, "epochs must be >= 1")]:
        with pytest.raises(ValueError, match=match):
            St.study_design(dict(study, parts=[part]), base_resolution=64, num_classes=10)


def test_bad_study_parameters_are_clear_errors():
    with pytest.raises(ValueError, match=r"levels \[3\]|levels \[7\]"):
        St.study_design(dict(STUDY, levels=[7]), base_resolution=64, num_classes=10)
    with pytest.raises(ValueError, match="ladder_level 1"):
        St.study_design(dict(STUDY, ladder_level=1), base_resolution=64, num_classes=10)
    with pytest.raises(ValueError, match="not found"):
        St.study_design(dict(STUDY, families_from="nope/sweep.json"), base_resolution=64, num_classes=10)


def test_cli_init_then_run_trains_with_per_trial_epochs_and_scores_halves(tmp_path, tiny_imagefolder, cache_dir,
                                                                           capsys):
    """`rubik study init` on a tiny ImageFolder (smoke recipe, a 2-trial design), `rubik sweep run`,
    then every record has its own epochs / seed and per-image outcomes scored on select / test."""
    from rubik.cli import main

    small = dict(STUDY, levels=[4], epochs=[1, 2], seeds=[3], b0_epochs=[], ladder_level=4,
                 depth_ladder_blocks=[], resolution_ladder_r=[])
    small["families_from"] = str(St.REPO_ROOT / STUDY["families_from"])
    d = tmp_path / "study"
    args = ["study", "init", str(d), "--data", str(tiny_imagefolder), "-p", "recipe=smoke", "-p", "device=cpu",
            "-p", f"study={json.dumps(small)}", "-p", "pipeline=tensor", "-p", "batch_size=8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 trials (9 trial-epochs)" in out and "optimizer steps" in out
    spec = S.load_spec(d)
    spec["trials"] = [t for t in spec["trials"] if t["family"] == "ours"]   # train 2 of them (ours: smallest)
    RD.atomic_write_json(d / "sweep.json", spec)
    assert main(["study", "cache", str(d), "--workers", "1"]) == 0
    assert main(["sweep", "run", str(d), "--threads", "1", "--no-progress"]) == 0
    df = S.load_results(d)
    assert (df.status == "done").all(), df.error.tolist()
    for _, row in df.iterrows():
        rec = json.loads((d / "trials" / f"{row.id}.json").read_text())
        assert rec["config"]["recipe"]["epochs"] == row.epochs and rec["seed"] == 3 == rec["config"]["seed"]
        assert len(rec["metrics"]["history"]) == row.epochs
    assert df.top1_test.between(0, 100).all() and df.top1_select.between(0, 100).all()
    assert main(args) == 2                       # the sweep changed (2 trials kept): refuses to overwrite it
    assert "exists with different trials" in capsys.readouterr().err
    assert main(["study", "init", str(tmp_path / "x"), "--data", str(tiny_imagefolder), "-p", "study=null"]) == 2
    assert "no 'study' mapping" in capsys.readouterr().err
    # one study parameter at a time: -p study.KEY=VALUE
    cfg = St.study_config("imagenette_long", str(tiny_imagefolder), ["study.seeds=[0, 1]", "epochs=7"])
    assert cfg["study"]["seeds"] == [0, 1] and cfg["study"]["levels"] == [2, 4] and cfg["epochs"] == 7
    assert main(["study", "init", str(tmp_path / "y"), "--data", str(tiny_imagefolder), "-p", "study.seedz=[0]"]) == 2
    assert "unknown study parameter(s) ['seedz']" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report, on a fake finished study

def fake_study_train(cfg: dict) -> dict:
    """Per-image outcomes whose hit rate rises with epochs and r, falls with d (deterministic)."""
    import math

    from rubik.data import pack_correct

    r, d, w = cfg["arch"]["twist"]   # study trials carry their Arch
    e, seed = cfg["recipe"]["epochs"], cfg["seed"]
    p = min(0.95, 0.45 + 0.05 * math.log2(e / 5) + 0.1 * (r - 0.6) - 0.08 * (d - 0.5))
    rng = np.random.default_rng([int(1e4 * r), int(1e4 * d), e, seed])
    labels = np.repeat(np.arange(10), 40)
    correct = rng.random(len(labels)) < p
    return {"top1": 100 * correct.mean(), "epochs": e, "val_correct": pack_correct(correct, labels)}


def test_report_on_a_fake_finished_study(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    design = St.study_design(STUDY, base_resolution=64, num_classes=10)
    d = tmp_path / "study"
    S.init_sweep(d, design, {"model": "efficientnet_b0", "data": {}, "recipe": "proxy", "epochs": 5, "seed": 0})
    L.run_worker(d, train_fn=fake_study_train, heartbeat=0)
    tables = St.report(d, copy_figures_to=tmp_path / "top", show=lambda *_: None)
    sched = tables["study_schedule"]
    assert len(sched) == 2 * 3 * 3 + 1 and (sched[sched.family != "base"].n == 3).all()
    gains = tables["study_gains"]
    assert len(gains) == 2 * (2 * 3 + 3) and set(gains.comparison) == {"tiny - giant", "ours - giant"}
    # one gain by hand: ours - giant at level 2, 10 epochs, on the test half
    res = St.load_study(d)
    pick = lambda fam: res[(res.name == f"{fam}_m2") & (res.epochs == 10)].set_index("seed").top1_test
    row = gains[(gains.comparison == "ours - giant") & (gains.level == 2) & (gains.epochs == 10)].iloc[0]
    assert row["mean"] == pytest.approx((pick("ours") - pick("giant")).mean())
    pooled = gains[gains.level == "all"]
    assert len(pooled) == 2 * 3 and (pooled.n == 2 * 3).all()       # 2 levels x 3 seeds of pairs per schedule
    mc = tables["study_mcnemar"]
    one = mc[(mc.comparison == "ours - giant") & (mc.level == 2) & (mc.epochs == 10) & (mc.seed == 1)].iloc[0]
    bits = S.load_correct(d)
    from rubik.data import val_split

    a, labels = bits[res[(res.name == "ours_m2") & (res.epochs == 10) & (res.seed == 1)].id.iloc[0]]
    b, _ = bits[res[(res.name == "giant_m2") & (res.epochs == 10) & (res.seed == 1)].id.iloc[0]]
    test = val_split(labels)["test"]
    assert one.only_a == (a[test] & ~b[test]).sum() and one.only_b == (~a[test] & b[test]).sum()
    assert (mc[mc.seed == "all"].groupby(["comparison"]).size() == 2 * 3).all()
    lad = tables["study_ladders"]
    assert sorted(lad[lad.ladder == "depth"].blocks) == [7, 10, 13, 16] and (lad.n == 3).all()
    slopes = tables["study_ladder_slopes"].set_index("ladder")
    assert slopes.loc["depth", "slope"] < 0 < slopes.loc["resolution", "slope"]   # what the fake trainer does
    for name in ("fig_study_schedule", "fig_study_ladders"):
        assert (d / "figures" / f"{name}.png").is_file() and (tmp_path / "top" / f"{name}.pdf").is_file()
    for name in ("study_schedule", "study_gains", "study_ladders"):
        assert (d / "tables" / f"{name}.md").is_file()
    # the CLI: same report; an unknown score column is a clear error
    from rubik.cli import main

    assert main(["study", "report", str(d), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "figures" / "fig_study_ladders.png").is_file()


def test_pooled_interval_pools_seed_noise_over_cells():
    from scipy import stats

    from rubik.study import pooled_interval

    lo, hi, sp, df = pooled_interval([1.0, 2.0], [3, 1], [1.0, 2.0, float("nan")], [3, 3, 1])
    assert df == 4 and sp == pytest.approx(np.sqrt((2 * 1 + 2 * 4) / 4))
    half = stats.t.ppf(0.975, 4) * sp / np.sqrt([3, 1])
    assert np.allclose(lo, [1 - half[0], 2 - half[1]]) and np.allclose(hi, [1 + half[0], 2 + half[1]])
    # one value per cell: no noise estimate, no interval
    lo, hi, sp, df = pooled_interval([1.0], [1], [float("nan")], [1])
    assert np.isnan(lo).all() and np.isnan(sp) and df == 0
    # many cells of known noise: the pooled std finds it
    rng = np.random.default_rng(0)
    cells = rng.normal(0, 1.5, size=(200, 3))
    _, _, sp, df = pooled_interval([0.0], [3], cells.std(axis=1, ddof=1), [3] * 200)
    assert df == 400 and sp == pytest.approx(1.5, rel=0.08)


def test_base_128_design_names_its_cells_apart_solves_the_ladder_for_c_and_queues_the_ends_first():
    from rubik.preset import load_preset

    study = load_preset("imagenette_128")["study"]
    design = St.study_design(study, base_resolution=128, num_classes=10)
    assert len(design) == 12 and set(design.blocks) == {7, 10, 13, 16}
    assert design.name.str.endswith(" @128px").all() and design.id.str.contains("_128px_s").all()
    # every seed of the ends (part 0) before any middle rung
    assert list(design.blocks[:6]) in ([16, 7] * 3, [7, 16] * 3) and set(design.blocks[6:]) == {10, 13}
    # w solved for c = 0.256 of B0 at 128 px (the level-2 giant would be c = 0.18 there)
    assert np.allclose(design.flops_ratio, 0.256, atol=0.006)
    assert set(design.resolution) == {102}
    # the 64-px ladder of the same names reads as other cells
    long = St.study_design(STUDY, base_resolution=64, num_classes=10)
    assert not set(design.name) & set(long.name) and not set(design.id) & set(long.id)
    for bad, match in [(dict(study, cell_suffix="12 8"), "cell_suffix"), (dict(study, queue="random"), "queue"),
                       (dict(study, ladder_flops_ratio=1.5), "ladder_flops_ratio")]:
        with pytest.raises(ValueError, match=match):
            St.study_design(bad, base_resolution=128, num_classes=10)
