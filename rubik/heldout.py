"""The held-out halves of the val set, and one evaluation's per-image outcomes.

Every model choice (tuning, frontier, formula fit) is made on the ``select`` half of the val set and
every claim is reported on the ``test`` half: ``val_split`` draws the two halves per class,
deterministically (seed ``SPLIT_SEED``). A training record keeps the top-1 hit of every val image
(``pack_correct``, ~0.5 kB for Imagenette), so the halves can be scored from the record alone
(``split_top1``), bootstrapped, or paired image by image with another model.
"""
from __future__ import annotations

import base64
import random

import numpy as np

#: seed of the documented ``select`` / ``test`` split of the val set (``val_split``)
SPLIT_SEED = 0


def val_split(labels, seed: int = SPLIT_SEED, fraction: float = 0.5) -> dict:
    """Split the val set per class into a ``select`` and a ``test`` half, deterministically.

    ``labels``: the class of every val image in manifest order (``dataset_samples(data, "val")``,
    the order ``evaluate`` scores them in). Within each class the images are shuffled by
    ``random.Random(f"split-{seed}-{label}")`` and the first ``floor(n * fraction)`` go to
    ``select``, the rest to ``test`` (an odd class gives ``test`` the extra image). Every model
    choice (tuning, frontier, formula fit) is made on ``select``; claims are reported on ``test``.
    Returns ``{"select": idx, "test": idx}``: sorted int arrays of positions into ``labels``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels):
        raise ValueError(f"val_split: labels must be a non-empty 1-d sequence, got shape {labels.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"val_split: fraction must be in (0, 1), got {fraction}")
    select, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label).tolist()
        random.Random(f"split-{seed}-{label}").shuffle(idx)
        k = int(len(idx) * fraction)
        select += idx[:k]
        test += idx[k:]
    return {"select": np.array(sorted(select), dtype=np.int64), "test": np.array(sorted(test), dtype=np.int64)}


def pack_correct(correct, labels) -> dict:
    """Per-image outcomes of one evaluation as a small JSON-able dict (~0.5 kB for Imagenette's val).

    ``{"n": N, "bits": base64(np.packbits(correct)), "labels": [[label, run length], ...]}``: the
    top-1 hit of every val image in manifest order, and the labels run-length encoded (a handful of
    runs: the manifest is sorted by class), so a record alone can be split by ``val_split``, scored on
    any subset, bootstrapped or paired image by image with another model (McNemar).
    """
    correct = np.asarray(correct, dtype=bool).ravel()
    labels = np.asarray(labels).ravel()
    if len(correct) != len(labels):
        raise ValueError(f"pack_correct: {len(correct)} outcomes but {len(labels)} labels")
    runs = []
    for lab in labels.tolist():
        if runs and runs[-1][0] == lab:
            runs[-1][1] += 1
        else:
            runs.append([int(lab), 1])
    return {"n": int(len(correct)), "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii"),
            "labels": runs}


def unpack_correct(packed: dict):
    """``(correct, labels)`` numpy arrays (bool, int64) from ``pack_correct``'s dict."""
    n = int(packed["n"])
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))
    if len(bits) < n:
        raise ValueError(f"unpack_correct: {len(bits)} bits for {n} images")
    labels = np.concatenate([np.full(k, lab, dtype=np.int64) for lab, k in packed["labels"]]) \
        if packed["labels"] else np.zeros(0, dtype=np.int64)
    if len(labels) != n:
        raise ValueError(f"unpack_correct: labels cover {len(labels)} images, expected {n}")
    return bits[:n].astype(bool), labels


def split_top1(packed: dict, seed: int = SPLIT_SEED) -> dict:
    """Top-1 (%) of one packed evaluation on the whole val set and on its ``select`` / ``test`` halves."""
    correct, labels = unpack_correct(packed)
    halves = val_split(labels, seed)
    return {"all": 100.0 * correct.mean(), **{k: 100.0 * correct[idx].mean() for k, idx in halves.items()}}
