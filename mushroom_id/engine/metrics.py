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
    """Precision, recall, F1 and support per class (0 where undefined)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = np.bincount(y_true[y_true == y_pred], minlength=num_classes).astype(float)
    pred_n = np.bincount(y_pred, minlength=num_classes).astype(float)
    true_n = np.bincount(y_true, minlength=num_classes).astype(float)
    precision = np.divide(tp, pred_n, out=np.zeros_like(tp), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros_like(tp), where=true_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true_n}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean F1 over the classes present in ``y_true`` (classes never seen are not averaged)."""
    prf = per_class_prf(y_true, y_pred, num_classes)
    present = prf["support"] > 0
    return float(prf["f1"][present].mean()) if present.any() else float("nan")


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


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising validation NLL (golden-section search on log T in [0.05, 20])."""
    logits = np.asarray(logits, dtype=np.float64)
    if len(y) == 0:
        return 1.0

    def loss(log_t: float) -> float:
        return nll(softmax(logits, float(np.exp(log_t))), y)

    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2))


def toxic_as_non_toxic_rate(y_true: np.ndarray, y_pred: np.ndarray, toxic: Sequence[bool]) -> float:
    """Share of toxic specimens whose predicted species is not toxic (nan if none are toxic)."""
    toxic = np.asarray(toxic, dtype=bool)
    is_toxic = toxic[np.asarray(y_true)]
    if not is_toxic.any():
        return float("nan")
    return float(np.mean(~toxic[np.asarray(y_pred)[is_toxic]]))


def fungiclef_cost(
    y_true: np.ndarray, y_pred: np.ndarray, toxic: Sequence[bool], edible: Sequence[bool]
) -> float:
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
