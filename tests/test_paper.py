"""The paper's numbers and ours beside them (``rubik.paper``)."""
from rubik.paper import measured_results


def test_measured_results_filters_by_dataset(tmp_path):
    import pandas as pd

    # a study's sweep table has no dataset column; an evaluation table has one
    (tmp_path / "study" / "tables").mkdir(parents=True)
    pd.DataFrame({"id": ["giant_m1"], "top1": [60.0]}).to_csv(tmp_path / "study" / "tables" / "runs.csv", index=False)
    pd.DataFrame({"name": ["tinynet_a", "tinynet_b"], "top1": [77.6, 75.0], "dataset": ["imagenet", "imagenette"]}
                 ).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert len(measured_results(tmp_path)) >= 3
    imnet = measured_results(tmp_path, dataset="imagenet")
    assert imnet.name.tolist() == ["tinynet_a"] and imnet.file.tolist() == ["eval.csv"]
    assert measured_results(tmp_path, dataset="imagenet100").empty
    assert measured_results(tmp_path / "missing", dataset="imagenet").empty
