"""Measured latency: sane numbers, threads respected and restored, sweeps re-measured from their dials."""
import json

import pytest
import torch
from torch import nn

import rubik
from rubik.cli import main as cli_main
from rubik.latency import measure_latency, summarize, sweep_latency


class _ThreadProbe(nn.Module):
    """Records torch's thread count and grad mode at every forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen = []

    def forward(self, x):
        self.seen.append((torch.get_num_threads(), torch.is_grad_enabled(), self.training, tuple(x.shape)))
        return self.conv(x)


def test_measure_latency_sane_and_restores_state():
    model = rubik.create_model("tinynet_e", num_classes=10, base_resolution=64)
    model.train()
    lat = measure_latency(model, threads=1, warmup=2, repeats=7)
    assert lat.resolution == 30 and lat.batch == 1 and lat.threads == 1 and lat.device == "cpu"
    assert len(lat.times_ms) == 7 and all(t > 0 for t in lat.times_ms)
    assert 0 < lat.q1_ms <= lat.median_ms <= lat.q3_ms < 10_000 and lat.iqr_ms == pytest.approx(lat.q3_ms - lat.q1_ms)
    assert model.training                                   # mode restored


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_batch_and_no_grad_are_respected(threads):
    probe = _ThreadProbe()
    before = torch.get_num_threads()
    lat = measure_latency(probe, 20, batch=3, threads=threads, warmup=1, repeats=4)
    assert probe.seen == [(threads, False, False, (3, 3, 20, 20))] * 5
    assert lat.threads == threads and lat.batch == 3
    assert torch.get_num_threads() == before


def test_summarize_median_and_iqr():
    lat = summarize([5, 1, 3, 2, 4], resolution=8, batch=1, threads=1, device="cpu")
    assert (lat.median_ms, lat.q1_ms, lat.q3_ms, lat.iqr_ms) == (3, 2, 4, 2)
    with pytest.raises(ValueError):
        measure_latency(_ThreadProbe(), 8, repeats=0)


def test_cli_latency_model_and_twist(capsys):
    assert cli_main(["latency", "--model", "tinynet_e", "--base-resolution", "64", "--repeats", "3", "--warmup", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "tinynet_e" and out["resolution"] == 30 and out["median_ms"] > 0
    assert cli_main(["latency", "--twist", "0.5,0.25,0.25", "--base-resolution", "64", "--repeats", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["twist"] == [0.5, 0.25, 0.25] and out["resolution"] == 32
    assert cli_main(["latency", "--twist", "0.5,0.25"]) == 2            # one line (tests/test_guarantees.py)
    assert "rubik latency: error: --twist '0.5,0.25'" in capsys.readouterr().err


def _fake_train(config):
    """Metrics only (no training): enough for sweep records."""
    r, d, w = config["arch"]["twist"]   # the trial's Arch (a dict)
    return {"top1": 50 + 10 * r + 5 * d + w, "top5": 100.0}


def test_sweep_records_latency_and_remeasure(tmp_path, capsys, monkeypatch):
    from rubik.latency import TRIAL_LATENCY_ENV, trial_latency_options
    from rubik.sampling import sample_twists

    monkeypatch.delenv(TRIAL_LATENCY_ENV)
    assert trial_latency_options(True)["repeats"] == 30 and trial_latency_options(False) is None
    assert trial_latency_options({"repeats": 3})["repeats"] == 3
    monkeypatch.setenv(TRIAL_LATENCY_ENV, "repeats=4,threads=2")
    assert trial_latency_options(True)["threads"] == 2 and trial_latency_options({"repeats": 3})["repeats"] == 3
    monkeypatch.setenv(TRIAL_LATENCY_ENV, "off")
    assert trial_latency_options({"repeats": 3}) is None
    monkeypatch.delenv(TRIAL_LATENCY_ENV)
    from rubik.launcher import run_sweep
    from rubik.sweep import init_sweep, load_results

    samples = sample_twists(3, "efficientnet_b0", base_resolution=64, num_classes=10, include_references=False,
                            seed=0, c_min=0.05)
    d = tmp_path / "sweep"
    init_sweep(d, samples, {"model": "efficientnet_b0"}, meta={"sampling": {"num_classes": 10}},
               latency={"repeats": 3, "warmup": 1})
    run_sweep(d, train_fn=_fake_train, progress=False)
    res = load_results(d)
    assert (res.status == "done").all() and (res.latency_ms > 0).all()
    rec = json.loads(next((d / "trials").glob("*.json")).read_text())
    assert rec["metrics"]["latency_threads"] == 1 and rec["metrics"]["latency_repeats"] == 3
    # turned off: no latency in the records
    d2 = tmp_path / "sweep2"
    init_sweep(d2, samples, {"model": "efficientnet_b0"}, latency=False)
    run_sweep(d2, train_fn=_fake_train, progress=False)
    assert load_results(d2).latency_ms.isna().all()
    # no class count in d2's meta or data: solved from the recorded parameter counts (10, not 1000)
    from rubik.latency import sweep_num_classes
    from rubik.sweep import load_spec

    assert sweep_num_classes(load_spec(d2)) == 10
    # re-measure from the dials (the CLI writes the CSV)
    df = sweep_latency(d, repeats=2, warmup=1, rounds=2, progress=False)
    assert len(df) == 3 and (df.timings == 4).all() and (df.latency_ms > 0).all()
    assert list(df.resolution) == list(res.resolution)
    assert cli_main(["latency", "--sweep", str(d), "--out", str(tmp_path / "lat.csv"), "--repeats", "2",
                     "--rounds", "1", "--quiet"]) == 0
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "lat.csv")) == 3
    assert cli_main(["latency", "--sweep", str(d), "--out", str(tmp_path / "lat.csv"), "--from-csv",
                     "--report", str(tmp_path / "rep")]) == 0
    assert "frontiers over 3 random models" in capsys.readouterr().out
    assert (tmp_path / "rep" / "figures" / "fig_latency_frontier.png").is_file()
    assert len(pd.read_csv(tmp_path / "rep" / "tables" / "latency_frontier.csv")) >= 1
    with pytest.raises(ValueError, match="parameters"):   # wrong class count is caught, not measured silently
        sweep_latency(d, repeats=1, rounds=1, num_classes=1000, progress=False)


def test_frontier_agreement_and_report(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from rubik.frontier import frontier_agreement
    from rubik.plots import plot_latency_frontier

    df = pd.DataFrame({"id": list("abcde"), "kind": "random", "flops": [1, 2, 3, 4, 5],
                       "latency_ms": [5, 1, 2, 3, 4], "top1": [50, 60, 55, 70, 80]})
    ag = frontier_agreement(df, ("flops", "latency_ms"), "top1")
    assert ag["first"] == ["a", "b", "d", "e"] and ag["second"] == ["b", "d", "e"]
    assert ag["both"] == ["b", "d", "e"] and ag["only_first"] == ["a"] and ag["only_second"] == []
    assert ag["jaccard"] == pytest.approx(3 / 4)
    from rubik.frontier import pareto_frontier

    fig = plot_latency_frontier(df, pareto_frontier(df, "flops"), pareto_frontier(df, "latency_ms"))
    assert len(fig.axes) == 2
