"""rubik.headline / `rubik figures`: the committed 5-epoch study's headline figures, redrawn from its
records and tables without training; every figure readable (no overlapping labels)."""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from rubik import headline, plots  # noqa: E402

STUDY = Path(__file__).resolve().parents[1] / "data" / "results" / "imagenette"


def test_every_headline_figure_of_the_committed_study_is_drawn_and_readable():
    notes, names, overlaps = [], [], {}
    for name, fig in headline.draw(STUDY, show=notes.append):
        names.append(name)
        if hits := plots.layout_problems(fig):
            overlaps[name] = hits
        plt.close(fig)
    assert names == list(headline.FIGURES) and not notes
    assert not overlaps, overlaps


def test_figures_command_writes_pngs_and_leaves_out_what_a_run_lacks(tmp_path, capsys):
    """A run without tables or tiny-vs-giant records (notebooks 03-05 not run): the frontier and
    paper figures are drawn, the others left out with a note; a folder that is no run: one line."""
    from rubik.cli import main

    run = tmp_path / "run"
    (run / "sweep" / "trials").mkdir(parents=True)
    for f in ("sweep.json", "trials/base.json", "trials/giant_m1.json", "trials/r000.json", "trials/r001.json"):
        (run / "sweep" / f).write_text((STUDY / "sweep" / f).read_text())
    spec = run / "sweep" / "sweep.json"
    s = json.loads(spec.read_text())
    s["trials"] = [t for t in s["trials"] if t["id"] in ("base", "giant_m1", "r000", "r001")]
    spec.write_text(json.dumps(s))
    assert main(["figures", str(run), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert written == sorted(["fig1_frontier.png", "fig3_frontier_dials.png", "fig_paper_tinynet_imagenet.png",
                              "fig_paper_appendix_ghostnet.png"]), written
    assert "dial_importance.csv not found" in out and "no tiny-vs-giant records" in out
    assert main(["figures", str(tmp_path / "nothing"), "--out", str(tmp_path / "figs")]) == 2
    assert capsys.readouterr().err.startswith("rubik figures: error: ")
