"""DRNet (rubik.drnet, rubik.models.multires): the issue's acceptance tests on tiny models and data."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rubik.train as T
from rubik.data import DataConfig
from rubik.drnet import (DRNetConfig, DRNetLoss, ResolutionPredictor, build_drnet, flops_penalty, predictor_flops,
                         st_gumbel_softmax)
from rubik.errors import ConfigError
from rubik.flops import count_flops
from rubik.models import Arch, create_model
from rubik.models.multires import MultiResBatchNorm2d, MultiResolutionClassifier
from conftest import train_config
from rubik.train import train

TWIST = (0.75, 0.25, 0.25)      # B0 at base 64 px -> 48 px, one block per stage: candidates 48, 36, 24
ARCH = Arch("efficientnet_b0", TWIST, base_resolution=64)


def drnet_cfg(root, task, **kw):
    base = dict(model=ARCH, data=DataConfig(root=str(root), pipeline="tensor", workers=0), recipe="smoke",
                batch_size=8, progress=False, task={"kind": "drnet", **task})
    base.update(kw)
    return train_config(**base)


# ----------------------------------------------------------------------------- building blocks

def test_per_resolution_batchnorm_keeps_separate_statistics():
    plain = create_model(ARCH, 3)
    clf = MultiResolutionClassifier(create_model(ARCH, 3), (48, 36, 24)).train()
    norms = [m for m in clf.modules() if isinstance(m, MultiResBatchNorm2d)]
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert len(norms) == n_bn and all(len(m.bns) == 3 for m in norms)   # every BatchNorm replaced, 3 sets each
    first = norms[0]
    before = [bn.running_mean.clone() for bn in first.bns]
    clf(torch.randn(4, 3, 48, 48) * 3 + 1, index=1)
    after = [bn.running_mean for bn in first.bns]
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])   # untouched sets
    assert not torch.equal(before[1], after[1])                                    # the one that ran
    # everything but BatchNorm is shared: the non-BN parameters are exactly the plain model's
    shared = {n.replace("model.", "", 1): p.numel() for n, p in clf.named_parameters() if ".bns." not in n}
    bn_names = {f"{n}.{k}" for n, m in plain.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
                for k in ("weight", "bias")}
    assert shared == {n: p.numel() for n, p in plain.named_parameters() if n not in bn_names}


def test_straight_through_gumbel_is_one_hot_with_nonzero_gradients():
    torch.manual_seed(0)
    logits = torch.randn(16, 3, requires_grad=True)
    w = st_gumbel_softmax(logits, tau=0.7)
    assert torch.equal(w.detach().sum(1), torch.ones(16)) and set(w.detach().unique().tolist()) <= {0.0, 1.0}
    (w * torch.tensor([3.0, 2.0, 1.0])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    hard = st_gumbel_softmax(logits.detach(), 1.0, noise=False)
    assert torch.equal(hard.argmax(1), logits.detach().argmax(1))


def test_flops_loss_is_zero_below_target_and_linear_above():
    assert flops_penalty(torch.tensor(0.4), 0.5, 2.0).item() == 0.0
    assert flops_penalty(torch.tensor(0.5), 0.5, 2.0).item() == 0.0
    assert flops_penalty(torch.tensor(0.7), 0.5, 2.0).item() == pytest.approx(0.4)
    loss = DRNetLoss([100, 50, 20], 5, 100, target=0.6, eta=2.0)
    choice = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])          # (20 + 5 + 50 + 5) / 2 / 100 = 0.4
    assert loss.expected_flops_ratio(choice).item() == pytest.approx(0.4)


def test_predictor_analytic_flops_match_ptflops():
    for ch, view in [((8, 16, 32), 32), ((4, 8, 16), 32), ((16, 32, 64, 128), 128), ((8,), 24)]:
        p = ResolutionPredictor(3, ch, view).eval()
        assert predictor_flops(3, ch, view) == count_flops(p, view), (ch, view)


def test_arch_flops_at_other_resolutions_match_ptflops():
    clf = MultiResolutionClassifier(create_model(ARCH, 3), (48, 36, 24)).eval()
    for k, r in enumerate(clf.resolutions):
        assert ARCH.flops(3, resolution=r) == count_flops(clf.branch(k), r)
    assert ARCH.flops(3, resolution=ARCH.input_size) == ARCH.flops(3)


def test_routed_flops_equal_analytic_counts_of_chosen_resolutions_plus_predictor():
    from rubik.drnet.evaluate import routed_outcomes

    model = build_drnet(ARCH, 3, DRNetConfig(stage="joint", flops_target=0.7)).eval()
    model.predictor.forward = lambda view: view.mean((2, 3))       # "the brightest channel": spread choices
    torch.manual_seed(0)
    batches = [(torch.randn(6, 3, 48, 48) + torch.randn(6, 3, 1, 1), torch.randint(0, 3, (6,))) for _ in range(3)]
    out = routed_outcomes(model, batches)
    analytic = [ARCH.flops(3, resolution=r) for r in (48, 36, 24)]
    pred = count_flops(ResolutionPredictor(3, (8, 16, 32), 32).eval(), 32)
    assert model.resolutions == [48, 36, 24] and model.classifier_flops == analytic and model.predictor_flops == pred
    assert len(set(out["choice"].tolist())) > 1
    np.testing.assert_array_equal(out["flops"], np.array(analytic, dtype=float)[out["choice"]] + pred)
    # every image through its own resolution only: the routed logits equal that branch's on the image alone
    x = batches[0][0]
    logits = model(x)
    for i, k in enumerate(model.last_choice.tolist()):
        torch.testing.assert_close(logits[i], model.classifier(x[i:i + 1], k)[0], rtol=1e-4, atol=1e-5)


def test_random_routing_scored_from_fixed_passes_equals_routing_for_real():
    from rubik.drnet.evaluate import _routing_outcome, routed_outcomes

    model = build_drnet(ARCH, 3, DRNetConfig(stage="joint", flops_target=0.7)).eval()
    torch.manual_seed(1)
    batches = [(torch.randn(5, 3, 48, 48), torch.randint(0, 3, (5,))) for _ in range(2)]
    hits = []
    for k in range(3):
        model.route = k
        hits.append(routed_outcomes(model, batches)["correct"])
    model.route = None
    choice = np.random.default_rng(0).integers(0, 3, 10)
    real = routed_outcomes(model, batches, choices=choice)
    fast = _routing_outcome(np.stack(hits, 1), real["labels"], choice, np.asarray(model.classifier_flops, float))
    np.testing.assert_array_equal(real["correct"], fast["correct"])
    np.testing.assert_array_equal(real["flops"], fast["flops"])     # given choices: no predictor FLOPs


# ----------------------------------------------------------------------------- errors before any data is read

@pytest.mark.parametrize("task, message", [
    ({"candidates": []}, "candidates"),
    ({"candidates": [0.5, 1.0]}, "largest first"),
    ({"candidates": [1.0, 1.5]}, r"\(0, 1\]"),
    ({"candidates": [1.0, 0.3]}, "floor"),                       # 48 * 0.3 = 14 px
    ({"candidates": [1.0, 0.76, 0.75]}, "repeated sizes"),       # int(48 * 0.76) = int(48 * 0.75) = 36
    ({"stage": "joint"}, "needs a flops_target"),
    ({"stage": "joint", "flops_target": 0.1}, "strictly between"),
    ({"stage": "joint", "flops_target": 5.0}, "strictly between"),
    ({"stage": "joint", "flops_target": "half"}, "flops_target"),
    ({"stage": "joint", "flops_target": 0.7, "temperature": [0.0, 1.0]}, "temperature start"),
    ({"stage": "joint", "flops_target": 0.7, "temperature": [1.0, float("nan")]}, "temperature end"),
    ({"stage": "multires", "bogus": 1}, "unknown DRNet setting"),
])
def test_bad_settings_are_one_line_errors_before_any_data(tmp_path, task, message):
    cfg = drnet_cfg(tmp_path / "no_such_data", {"stage": "multires", **task}, out_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (tmp_path / "run").exists()
    cmd = [sys.executable, "-m", "rubik", "drnet", "run", str(tmp_path / "exp"), "--data", str(tmp_path / "none"),
           "-p", "candidates=[0.5, 1.0]"]
    if message == "largest first":
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
        assert p.stderr.startswith("rubik drnet run: error: DRNet candidates [0.5, 1.0]")


# ----------------------------------------------------------------------------- training through rubik.train

def test_both_stages_train_evaluate_and_validate(tiny_imagefolder, cache_dir, tmp_path):
    from rubik.drnet.evaluate import evaluate_drnet, load_drnet
    from rubik.validate import validate

    small = {"predictor_channels": [4, 8], "predictor_view": 16}     # a predictor small beside this tiny backbone
    stage1 = train(drnet_cfg(tiny_imagefolder, {"stage": "multires", **small}, epochs=2, out_dir=str(tmp_path / "s1")))
    h = json.loads((tmp_path / "s1" / "metrics.jsonl").read_text().splitlines()[-1])
    assert len(h["ce_per_resolution"]) == 3 and stage1["resolution"] == 48
    init = str(tmp_path / "s1" / "checkpoint.pt")
    task = {"stage": "joint", "flops_target": 0.6, "temperature": [2.0, 0.5], **small, "init": init}
    stage2 = train(drnet_cfg(tiny_imagefolder, task, epochs=2, out_dir=str(tmp_path / "s2")))
    h = json.loads((tmp_path / "s2" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"ce", "flops_ratio", "penalty", "choice_fraction"} <= set(h) and stage2["status"] == "done"

    model, config = load_drnet(tmp_path / "s2" / "checkpoint.pt")
    assert model.joint and config["task"]["stage"] == "joint"
    # BatchNorm as trained (the recipe's eps, not PyTorch's default), so the rebuilt model scores as it did
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}
    data = DataConfig(root=str(tiny_imagefolder), pipeline="tensor", workers=0)
    rep = evaluate_drnet(model, data, n_random=3, latency=True)
    assert rep["routed"]["top1"]["all"] == pytest.approx(stage2["top1"])        # as the run's last evaluation
    assert len(rep["fixed"]) == 3 and sum(rep["routed"]["histogram_test"]) == 6     # 12 val images, half in test
    assert rep["routed"]["mean_flops"]["all"] >= min(model.classifier_flops) + model.predictor_flops
    assert rep["random"]["n"] == 3 and len(rep["latency"]["classifier_ms"]) == 3
    assert rep["routed"]["agreement_with_fixed_passes"] == 1.0      # scoring a routing from the fixed passes is exact
    v = validate(model, tiny_imagefolder, workers=0, progress=False)               # rubik validate's path
    assert v["images"] == 12 and v["resolution"] == 48
    p = subprocess.run([sys.executable, "-m", "rubik", "validate", "--checkpoint",
                        str(tmp_path / "s2" / "checkpoint.pt"), "--data", str(tiny_imagefolder), "--workers", "0",
                        "--quiet"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["resolution"] == 48


def test_joint_stage_resume_is_bit_exact(tiny_imagefolder, cache_dir, tmp_path, monkeypatch):
    small = {"predictor_channels": [4, 8], "predictor_view": 16}
    s1 = drnet_cfg(tiny_imagefolder, {"stage": "multires", **small}, epochs=1, out_dir=str(tmp_path / "s1"))
    train(s1)
    task = {"stage": "joint", "flops_target": 0.6, "temperature": [2.0, 0.5], **small,
            "init": str(tmp_path / "s1" / "checkpoint.pt")}
    full = train(drnet_cfg(tiny_imagefolder, task, epochs=3, out_dir=str(tmp_path / "full")))

    real_save, calls = T.save_checkpoint, []

    def killed_after_first_epoch(path, state):
        real_save(path, state)
        calls.append(state["epoch"])
        if state["epoch"] == 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(T, "save_checkpoint", killed_after_first_epoch)
    cfg = drnet_cfg(tiny_imagefolder, task, epochs=3, out_dir=str(tmp_path / "part"))
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    resumed = train(dataclasses.replace(cfg, resume=True))
    assert calls == [1, 2, 3]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert [h["train_loss"] for h in full["history"]] == [h["train_loss"] for h in resumed["history"]]
    assert [h["choice_fraction"] for h in full["history"]] == [h["choice_fraction"] for h in resumed["history"]]
    # another FLOPs target is another run: resuming with it is refused
    other = drnet_cfg(tiny_imagefolder, {**task, "flops_target": 0.7}, epochs=3, out_dir=str(tmp_path / "part"),
                      resume=True)
    with pytest.raises(T.RunDirError, match="task"):
        train(other)


def test_experiment_runs_resumably_and_reports(tiny_imagefolder, cache_dir, tmp_path):
    import yaml

    from rubik.drnet.experiment import load_preset, plan

    preset = {**load_preset("imagenette"), "backbone": ARCH.to_dict(), "predictor_channels": [4, 8],
              "predictor_view": 16, "targets": [0.8], "recipe": {"name": "smoke"}, "seeds": [0], "n_random": 3,
              "epochs": {"fixed": 1, "multires": 1, "joint": 1}, "data": {"pipeline": "tensor", "workers": 0}}
    names = [r["name"] for r in plan(preset, str(tiny_imagefolder), tmp_path / "exp")]
    assert names == ["multires", "fixed_48", "fixed_36", "fixed_24", "joint_0.8"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(preset))
    run = [sys.executable, "-m", "rubik", "drnet", "run", str(tmp_path / "exp"), "--preset",
           str(tmp_path / "tiny.yaml"), "--data", str(tiny_imagefolder)]
    p = subprocess.run(run, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    evals = sorted((tmp_path / "exp").glob("seed0/*/eval.json"))
    assert len(evals) == 5
    from rubik.sweep import code_version
    assert {json.loads(e.read_text())["code_version"] for e in evals} == {code_version()}   # provenance
    p = subprocess.run(run, capture_output=True, text=True)                     # all done: nothing retrained
    assert p.returncode == 0 and "train" not in p.stdout, p.stdout
    report = [sys.executable, "-m", "rubik", "drnet", "report", str(tmp_path / "exp"), "--data", str(tiny_imagefolder)]
    p = subprocess.run(report, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "| seed | model | routing |" in p.stdout and "Primary (" in p.stdout      # the tables, as text
    p = subprocess.run(report + ["--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    files = set(json.loads(p.stdout)["files"])
    assert {"summary.md", "drnet_accuracy_flops.png", "drnet_resolution_histogram.png", "drnet_examples.png"} <= files


def test_seed_summary_follows_the_registered_plan(monkeypatch):
    """data/results/imagenette/drnet/ANALYSIS.md: the primary is the mean over targets per seed, a
    t interval over seeds; per-target rows use Bonferroni-adjusted t intervals; the decision words."""
    import math

    from scipy import stats

    import rubik.drnet.report as R

    gains = {0: {0.45: -0.5, 0.6: -2.0, 0.75: -1.0}, 1: {0.45: 0.5, 0.6: -1.0, 0.75: -0.5},
             2: {0.45: -1.5, 0.6: -0.5, 0.75: 0.0}}
    evals = [{"seed": s, "name": f"joint_{t}", "task": {"flops_target": t}} for s in gains for t in gains[s]]
    rows = [{"seed": s, "model": f"joint_{t}", "routing": "DRNet (predictor)", "gain_vs_fixed_curve": g,
             "gain_vs_random": 0.1 * g} for s in gains for t, g in gains[s].items()]
    rows.append({"seed": 0, "model": "fixed_51", "routing": "fixed 51 px"})      # not a DRNet row: ignored
    monkeypatch.setattr(R, "summary_rows", lambda e: [r for r in rows if r["routing"] != "DRNet (predictor)"
                                                     or (r["seed"], r["model"]) in {(x["seed"], x["name"]) for x in e}])
    out = R.seed_summary(evals)
    per_seed = [sum(gains[s].values()) / 3 for s in (0, 1, 2)]
    mean = sum(per_seed) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in per_seed) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    p = out["primary"]
    assert p["seeds"] == [0, 1, 2] and p["mean"] == pytest.approx(mean)
    assert (p["low"], p["high"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert p["decision"] == R.decide(p["low"], p["high"])
    sec = {(r["target"], r["comparison"]): r for r in out["secondary"]}
    r = sec[0.6, "vs fixed curve"]
    vals = [gains[s][0.6] for s in (0, 1, 2)]
    m = sum(vals) / 3
    half = stats.t.ppf(1 - 0.05 / 3 / 2, 2) * math.sqrt(sum((v - m) ** 2 for v in vals) / 2) / math.sqrt(3)
    assert r["ci"] == pytest.approx(1 - 0.05 / 3) and r["high"] == pytest.approx(m + half)
    # a seed missing a target leaves the primary, not the per-target rows
    out = R.seed_summary([e for e in evals if not (e["seed"] == 2 and e["name"] == "joint_0.75")])
    assert out["primary"]["seeds"] == [0, 1]
    # the decision words
    assert R.decide(0.1, 2.0) == "DRNet above the fixed-resolution curve"
    assert R.decide(-3.0, -0.1) == "DRNet below the fixed-resolution curve"
    assert R.decide(-3.0, 1.0) == "the paper's gain (>= +1.4) does not reproduce"
    assert R.decide(-3.0, 2.0) == "undecided at this number of seeds"
    assert R.decide(-3.0, 1.0, None, "random routing") == "undecided at this number of seeds"
    assert R.decide(math.nan, math.nan).startswith("undecided (fewer than 2")


DDP_SCRIPT = """
import json, sys
from rubik.config import TrainConfig
from rubik.train import train
cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
train(cfg)
"""


def test_both_stages_under_torchrun_two_processes_gloo(tiny_imagefolder, cache_dir, tmp_path):
    """DRNet's task through the engine's DDP path (torchrun, 2 CPU processes, gloo: the multi-GPU code path):
    the multi-resolution stage (predictor unused, so frozen for DDP) and the joint stage both train, rank 0
    writes one checkpoint with plain names, and it loads and routes as a DRNet."""
    import os

    from rubik.drnet.evaluate import load_drnet

    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RUBIK_CACHE_DIR": str(cache_dir)}
    small = {"predictor_channels": [4, 8], "predictor_view": 16}
    stages = [("s1", {"stage": "multires", **small}),
              ("s2", {"stage": "joint", "flops_target": 0.6, "temperature": [2.0, 0.5], **small,
                      "init": str(tmp_path / "s1" / "checkpoint.pt")})]
    for name, task in stages:
        cfg = drnet_cfg(tiny_imagefolder, task, epochs=2, batch_size=4, device="cpu", threads=1,
                        out_dir=str(tmp_path / name))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               json.dumps(cfg.to_dict())]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert [x["epoch"] for x in lines] == [1, 2]                     # rank 0 writes, once per epoch
        ck = torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)
        assert not any(k.startswith("module.") for k in ck["model"])
        assert ck["scheduler"]["last_step"] == 6                         # 24 images / (2 ranks x 4) x 2 epochs
    assert {"ce", "flops_ratio", "choice_fraction"} <= set(lines[-1])
    model, _ = load_drnet(tmp_path / "s2" / "checkpoint.pt")
    model.eval()(torch.randn(2, 3, 48, 48))
    assert model.joint and model.last_choice.shape == (2,)


@pytest.mark.parametrize("argv, message", [
    (["report", "{tmp}/nothing"], "no evaluated runs"),
    (["run", "{tmp}/exp", "--seeds", "a,b"], "--seeds 'a,b': expected comma-separated integers"),
    (["run", "{tmp}/exp", "--only", "bogus", "--data", "{tmp}"], "--only ['bogus']: not a run of this preset"),
])
def test_cli_bad_arguments_are_one_line_errors(tmp_path, argv, message):
    p = subprocess.run([sys.executable, "-m", "rubik", "drnet", *[a.format(tmp=tmp_path) for a in argv]],
                       capture_output=True, text=True)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "exp").exists()   # nothing written


def test_report_with_other_data_is_refused_and_the_notebook_leaves_it_out(tiny_imagefolder, tmp_path):
    """The class names and example grid need the experiment's own images: ``--data`` with other data is a one-line
    error before anything is written, and ``data_matches`` (what notebook 08 asks) says no."""
    from rubik.drnet.report import data_matches, load_evals, write_report
    from rubik.reproduce import make_synthetic_imagefolder

    committed = Path(__file__).resolve().parents[1] / "data" / "results" / "imagenette" / "drnet"
    evals = load_evals(committed)
    assert evals and not data_matches(evals, tiny_imagefolder) and not data_matches(evals, None)
    other = make_synthetic_imagefolder(tmp_path / "ten", classes=10, train_per_class=1, val_per_class=1, size=16)
    assert not data_matches(evals, other)                     # 10 classes, but not its 3,925 val images
    with pytest.raises(ConfigError, match="not the images this experiment evaluated"):
        write_report(committed, tmp_path / "report", data_root=tiny_imagefolder)
    assert not (tmp_path / "report").exists()


def test_equal_training_analysis_recombines_runs_and_measures_routing(tmp_path):
    """rubik.drnet.equal (data/results/imagenette/drnet_equal/ANALYSIS.md): the registered estimand on
    runs combined from two folders; with both the committed folder it is the registered +0.38 [-3.38, +4.14];
    the routing entropy is 0 for one resolution and log2 3 for an even three-way mix."""
    import math

    from rubik.drnet import equal

    committed = Path(__file__).resolve().parents[1] / "data" / "results" / "imagenette" / "drnet"
    s = equal.seed_summary(equal.combine(committed, committed), 0.95)["primary"]
    assert (round(s["mean"], 2), round(s["low"], 2), round(s["high"], 2)) == (0.38, -3.38, 4.14)
    assert equal.routing_entropy([0, 0, 1966]) == 0 and equal.routing_entropy([5, 5, 5]) == math.log2(3)
    rows = equal.routing_rows(equal.load_evals(committed), "committed")
    assert len(rows) == 9 and {r["target"] for r in rows} == {0.45, 0.6, 0.75}
    assert max(r["entropy_bits"] for r in rows if r["target"] == 0.45) == 0   # every image to 25 px
    with pytest.raises(ValueError, match="fixed_"):
        equal.combine(committed, tmp_path)
    assert equal.main([str(committed), str(tmp_path)]) == 2


# ----------------------------------------------------------------------------- what the commands print

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results" / "imagenette" / "drnet"


def test_drnet_eval_prints_a_short_table_headline_first_and_json_on_request(monkeypatch, capsys):
    """Issue 37.8: not 1,107 lines of JSON with the headline at the bottom."""
    import rubik.drnet.experiment as X
    from rubik.cli import main

    report = json.loads((COMMITTED / "seed1" / "joint_0.6" / "eval.json").read_text())
    monkeypatch.setattr(X, "load_drnet", lambda path: (None, {"data": {}}))
    monkeypatch.setattr(X, "evaluate_drnet", lambda *a, **k: report)
    assert main(["drnet", "eval", "run/checkpoint.pt", "--data", "somewhere"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("DRNet run/checkpoint.pt: top-1 57.27 % on the test half (56.20 % on all val images) at "
                        "2.76 MFLOPs per image (35 % of the 7.91 M reference)"), lines[0]
    assert len(lines) <= 15 and lines[3].split()[:3] == ["DRNet", "(predictor)", "57.27"]
    assert [ln.split()[1] for ln in lines if ln.startswith("fixed ")] == ["51", "38", "25"]
    assert main(["drnet", "eval", "run/checkpoint.pt", "--data", "somewhere", "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["routed"]["top1"]["test"] == report["routed"]["top1"]["test"] and "choice" not in full["routed"]


def test_seed_analysis_of_one_seed_says_n_a_not_empty_brackets():
    """Issue 37.8: `drnet report` printed "sd , interval [, ]" for one seed."""
    from rubik.drnet.report import load_evals, seed_summary, seed_summary_markdown

    one = [e for e in load_evals(COMMITTED) if e["seed"] == 1]
    text = seed_summary_markdown(seed_summary(one))
    assert "sd and t interval n/a (1 seed): **undecided (fewer than 2 seeds)**" in text
    assert "[, ]" not in text and "sd ," not in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0.")]
    assert rows and all("| n/a (1 seed) | n/a (1 seed) |" in ln for ln in rows)
    three = seed_summary_markdown(seed_summary(load_evals(COMMITTED)))   # three seeds: unchanged
    assert three == (COMMITTED / "report" / "seeds.md").read_text()


def test_drnet_examples_are_titled_with_class_names_not_wordnet_ids(tmp_path, cache_dir, monkeypatch):
    """Issue 37.8: drnet_examples.png showed n01440764 ... over its images."""
    import matplotlib.figure

    from conftest import make_imagefolder
    from rubik.data import class_name, pack_correct
    from rubik.drnet.report import plot_examples

    root = make_imagefolder(tmp_path / "nette", classes=3, per_class=(1, 4))
    wnids = ["n01440764", "n02102040", "n03888605"]
    for split in ("train", "val"):
        for k, wnid in enumerate(wnids):
            (root / split / f"class_{k}").rename(root / split / wnid)
    labels = np.repeat(np.arange(3), 4)
    e = {"resolutions": [48, 36, 24], "seed": 0, "task": {"flops_target": 0.6},
         "routed": {"choice": [i % 3 for i in range(12)], "correct": pack_correct(np.ones(12, bool), labels)}}
    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    plot_examples(e, root, tmp_path / "examples.png", per_row=4)
    titles = {ax.get_title() for ax in saved[0].axes} - {""}
    assert titles and titles <= {"tench", "English springer", "parachute"}, titles
    assert class_name("n03000684") == "chain saw" and class_name("class_0") == "class_0"


def test_report_quotes_the_committed_equal_training_comparison():
    """REPORT and README quote Q7 and Q5 of data/results/imagenette/drnet_equal as the analysis
    computes them from the committed runs."""
    from rubik.drnet import equal

    root = Path(__file__).resolve().parents[1]
    res = equal.analyse(root / "data/results/imagenette/drnet", root / "data/results/imagenette/drnet_equal")
    report = " ".join((root / "REPORT.md").read_text().split())
    readme = " ".join((root / "README.md").read_text().split())
    for name, s in res.items():
        if name == "routing":
            continue
        p = s["primary"]
        quote = f"{p['mean']:+.2f}".lstrip("+") + f" points, 97.5 % [{p['low']:+.2f}, {p['high']:+.2f}]"
        if name.startswith("Q7"):
            assert quote in report.replace("**", "") and quote in readme.replace("**", ""), quote
            assert p["decision"] == "DRNet below the fixed-resolution curve"
        else:
            assert f"{p['mean']:+.2f}, 97.5 % [{p['low']:+.2f}, {p['high']:+.2f}]" in report.replace("**", "")
