"""`rubik data compact`: a resumable, smaller copy of an ImageFolder with the same file list."""
import json

import pytest
from PIL import Image

from conftest import make_imagefolder
from rubik.cli import main as cli_main
from rubik.compact import compact_dataset
from rubik.data import DataConfig, dataset_samples


def test_compact_copy_keeps_files_and_resizes(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=(3, 2), size=48)
    dst = tmp_path / "dst"
    out = compact_dataset(src, dst, short_side=20, quality=80, workers=1, progress=False)
    assert out["images"] == out["written"] == 10 and out["skipped"] == 0
    for split in ("train", "val"):   # same samples and labels as the source
        assert dataset_samples(DataConfig(root=str(dst)), split)[2] == dataset_samples(DataConfig(root=str(src)), split)[2]
    with Image.open(dst / "train" / "class_0" / "img_001.jpg") as im:   # 48x64 source: shorter side 20
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (27, 20)
    assert json.loads((dst / "compact.json").read_text())["short_side"] == 20
    # resumable: a missing file is redone, the others are skipped
    (dst / "val" / "class_1" / "img_000.jpg").unlink()
    (dst / "val" / "class_1" / "img_000.jpg.x1.tmp").write_bytes(b"half")   # left by a killed run
    again = compact_dataset(src, dst, short_side=20, quality=80, workers=1, progress=False)
    assert again["written"] == 1 and again["skipped"] == 9
    assert not list(dst.glob("*/*/*.tmp"))
    with pytest.raises(ValueError, match="short side 20"):
        compact_dataset(src, dst, short_side=32, quality=80, workers=1, progress=False)


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert cli_main(["data", "compact", str(tmp_path / "nope"), str(tmp_path / "dst"), "--no-progress"]) == 2
    assert "rubik data compact: error:" in capsys.readouterr().err
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=(1, 1), size=24)
    assert cli_main(["data", "compact", str(src), str(tmp_path / "dst"), "--short-side", "16", "--workers", "2",
                     "--no-progress"]) == 0
    assert "4 images (4 written" in capsys.readouterr().out
