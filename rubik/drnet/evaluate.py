"""Routed evaluation of a DRNet: every image only at its chosen resolution, with the real cost.

For one trained DRNet (``evaluate_checkpoint``) on the val set, split into the documented ``select`` /
``test`` halves (``rubik.data.val_split``):

* ``routed``: the predictor chooses (argmax, no noise); top-1, mean FLOPs per image (the classifier at
  the chosen resolution plus the predictor, from the analytic counts), the resolution histogram;
* ``fixed``: every image at candidate k (no predictor), for each k: the multi-resolution-BN curve;
* ``random``: the same classifier with the routed choices shuffled over the images (seeded
  permutations): the same resolution mix and mean FLOPs, no predictor; does the predictor beat it?
  (In eval mode every image's logits at a resolution do not depend on the rest of its batch, so the
  ``fixed`` passes' per-image hits at each candidate score any routing: a permutation costs no pass.)
* ``latency``: median forward time (1 thread, batch 1, ``rubik.measure_latency``) of the predictor and of
  the classifier at each candidate, and the per-image mean under the routed mix.

Per-image choices and outcomes are kept (``choice``, ``correct``), so figures and paired comparisons
need no second pass.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import DataConfig, TensorLoader, pack_correct, tensor_cache, val_split
from ..latency import measure_latency
from ..rundir import load_torch_file
from ..validate import model_from_checkpoint


def val_loader(data: DataConfig, image_size: int, *, device="cpu", batch_size: int = 256) -> TensorLoader:
    """The val split through the eval transform at ``image_size`` (the tensor pipeline, as training evaluates)."""
    va = tensor_cache(data, "val", image_size, progress=False)
    return TensorLoader(va["x"], va["y"], batch_size, image_size=image_size, train=False, device=device)


@torch.no_grad()
def routed_outcomes(model, loader, *, choices: np.ndarray | None = None) -> dict:
    """Per-image ``correct``, ``labels``, ``choice`` and ``flops`` (numpy), every image through the classifier
    at its choice only. ``choices`` (one index per image, loader order) replaces the model's own routing
    (its ``route`` if fixed, else the predictor); given choices cost no predictor FLOPs."""
    model.eval()
    device = next(model.parameters()).device
    correct, labels, chosen, flops = [], [], [], []
    offset = 0
    for x, y in loader:
        if choices is None:
            choice = model.choose(x)
            predicted = model.route is None and model.predictor is not None
        else:
            choice = torch.as_tensor(choices[offset:offset + len(y)], dtype=torch.long, device=device)
            predicted = False
        offset += len(y)
        logits = model.forward_routed(x, choice)
        correct.append((logits.argmax(1) == y).cpu().numpy())
        labels.append(y.cpu().numpy())
        chosen.append(choice.cpu().numpy())
        flops.append(model.image_flops(choice, predicted=predicted).cpu().numpy())
    return {k: np.concatenate(v) for k, v in
            (("correct", correct), ("labels", labels), ("choice", chosen), ("flops", flops))}


def _routing_outcome(hits: np.ndarray, labels: np.ndarray, choice: np.ndarray, flops: np.ndarray) -> dict:
    """Outcomes of routing ``choice`` scored from the per-candidate hits (N, K) of the fixed passes."""
    return {"correct": hits[np.arange(len(choice)), choice], "labels": labels, "choice": choice, "flops": flops[choice]}


def summarize(out: dict, halves: dict, num_candidates: int) -> dict:
    """Top-1 (%) and mean FLOPs per image on all / select / test, and the test half's resolution histogram."""
    parts = {"all": np.arange(len(out["correct"])), **halves}
    return {"top1": {k: 100.0 * float(out["correct"][i].mean()) for k, i in parts.items()},
            "mean_flops": {k: float(out["flops"][i].mean()) for k, i in parts.items()},
            "histogram_test": np.bincount(out["choice"][halves["test"]], minlength=num_candidates).tolist()}


def component_latency(model, *, threads: int = 1, repeats: int = 30) -> dict:
    """Median ms (batch 1) of the predictor on its view and of the classifier at each candidate."""
    was = model.training
    out = {"classifier_ms": [measure_latency(model.classifier.branch(k), threads=threads, repeats=repeats).median_ms
                             for k in range(len(model.resolutions))]}
    if model.predictor is not None:
        out["predictor_ms"] = measure_latency(model.predictor, threads=threads, repeats=repeats).median_ms
    model.train(was)
    return out


def evaluate_drnet(model, data: DataConfig, *, device="cpu", n_random: int = 1000, seed: int = 0,
                   latency: bool = True) -> dict:
    """The report described in the module docstring for ``model`` (a :class:`~rubik.drnet.model.DRNet`)."""
    device = torch.device(device)
    model.to(device).eval()
    loader = val_loader(data, model.resolution, device=device)
    K = len(model.resolutions)
    report = {"resolutions": model.resolutions, "classifier_flops": model.classifier_flops,
              "predictor_flops": model.predictor_flops, "reference_flops": model.reference_flops, "fixed": []}
    route = model.route
    halves, hits = None, []
    try:
        for k in range(K):
            model.route = k
            out = routed_outcomes(model, loader)
            halves = halves or val_split(out["labels"])
            hits.append(out["correct"])
            report["fixed"].append({**summarize(out, halves, K),
                                    "correct": pack_correct(out["correct"], out["labels"])})
        if model.joint:
            model.route = None
            out = routed_outcomes(model, loader)     # the real thing: each image through its resolution only
            report["routed"] = {**summarize(out, halves, K), "correct": pack_correct(out["correct"], out["labels"]),
                                "choice": out["choice"].tolist()}
            hits = np.stack(hits, 1)
            agree = float((_routing_outcome(hits, out["labels"], out["choice"], np.zeros(K))["correct"]
                           == out["correct"]).mean())
            report["routed"]["agreement_with_fixed_passes"] = agree   # 1.0 unless batch effects (none in eval)
            rng = np.random.default_rng(seed)
            table = np.asarray(model.classifier_flops, dtype=float)   # random routing: no predictor to pay for
            runs = [summarize(_routing_outcome(hits, out["labels"], rng.permutation(out["choice"]), table), halves, K)
                    for _ in range(n_random)]
            tests = np.array([r["top1"]["test"] for r in runs])
            report["random"] = {"n": n_random, "seed": seed, "top1_test": tests.tolist(),
                                "top1_test_mean": float(tests.mean()), "top1_test_std": float(tests.std(ddof=1))
                                if n_random > 1 else 0.0,
                                "mean_flops_test": runs[0]["mean_flops"]["test"] if runs else None}
    finally:
        model.route = route
    if latency:
        lat = component_latency(model.cpu())
        if "routed" in report:
            frac = np.bincount(report["routed"]["choice"], minlength=K) / len(report["routed"]["choice"])
            lat["routed_mean_ms"] = float(lat.get("predictor_ms", 0.0) + frac @ np.array(lat["classifier_ms"]))
        report["latency"] = {**lat, "threads": 1, "batch": 1, "device": "cpu"}
    return report


def load_drnet(path, *, ema: bool = False):
    """``(model, config dict)`` of a DRNet ``checkpoint.pt`` written by ``rubik.train`` (see
    ``rubik.validate.model_from_checkpoint``, which this uses)."""
    model = model_from_checkpoint(path, ema=ema)   # checks the file: tensors and plain values only
    return model, load_torch_file(Path(path).expanduser()).get("config", {})


__all__ = ["evaluate_drnet", "routed_outcomes", "summarize", "component_latency", "val_loader", "load_drnet"]
