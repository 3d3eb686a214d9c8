"""Pure metric functions on numpy arrays (no network: evaluate's Hub metrics are not used).

``probs`` are (N, C) probabilities, ``logits`` (N, C) raw scores, ``y`` (N,) integer labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOXIC_COST = 100  # FungiCLEF: a toxic specimen predicted as a non-toxic species
EDIBLE_AS_TOXIC_COST = 1  # FungiCLEF: an edible specimen predicted as toxic


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_k_accuracy(probs: np.ndarray, y: np.ndarray, k: int = 1) -> float:
    if len(y) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(y)[:, None], axis=1)))


def per_class_prf(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined), by scikit-learn."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=np.arange(num_classes), zero_division=0
    )
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(float)}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean F1 over the classes present in ``y_true`` (classes never seen are not averaged)."""
    from sklearn.metrics import f1_score

    present = np.unique(np.asarray(y_true))
    if not len(present):
        return float("nan")
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half);
    nan when one class is missing."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.asarray(scores, float)))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-1 confidence with equal-width bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per non-empty bin, for a reliability diagram."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return [
        (float(conf[bins == b].mean()), float(correct[bins == b].mean()), int((bins == b).sum()))
        for b in range(n_bins)
        if (bins == b).any()
    ]


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    p = probs[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def toxic_as_non_toxic_rate(y_true: np.ndarray, y_pred: np.ndarray, toxic: Sequence[bool]) -> float:
    """Share of toxic specimens whose predicted species is not toxic (nan if none are toxic)."""
    toxic = np.asarray(toxic, dtype=bool)
    is_toxic = toxic[np.asarray(y_true)]
    if not is_toxic.any():
        return float("nan")
    return float(np.mean(~toxic[np.asarray(y_pred)[is_toxic]]))


def fungiclef_cost(y_true: np.ndarray, y_pred: np.ndarray, toxic: Sequence[bool], edible: Sequence[bool]) -> float:
    """Mean FungiCLEF safety cost: 100 per toxic specimen predicted as a non-toxic species,
    1 per edible specimen predicted as a toxic species."""
    toxic, edible = np.asarray(toxic, dtype=bool), np.asarray(edible, dtype=bool)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan")
    missed = toxic[y_true] & ~toxic[y_pred]
    false_alarm = edible[y_true] & toxic[y_pred]
    return float((TOXIC_COST * missed.sum() + EDIBLE_AS_TOXIC_COST * false_alarm.sum()) / len(y_true))


def most_confused_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], top: int = 10
) -> list[tuple[str, str, int]]:
    """(true label, predicted label, count) of the most frequent errors."""
    pairs: dict[tuple[int, int], int] = {}
    for t, p in zip(np.asarray(y_true), np.asarray(y_pred), strict=True):
        if t != p:
            pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], labels[kv[0][0]], labels[kv[0][1]]))
    return [(labels[t], labels[p], n) for (t, p), n in ranked[:top]]
