"""PNG plots: training curves (like the original's), reliability diagram, confusion among the most
confused species. matplotlib with the Agg backend: no display needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: Sequence[dict], path: str | Path, steps: Sequence[Sequence[float]] | None = None) -> Path:
    """Loss and accuracy, train vs validation, readable for a run of any length.

    ``history``: per-epoch rows (keys epoch, step, train_loss, val_loss, train_top1, val_top1, val_top5);
    ``steps``: per-optimizer-step rows ``[step, epoch, train_loss, lr]`` (``steps.csv``). With steps the
    x axis is the optimizer step: the training loss of every step (and its running mean), validation
    at each epoch's last step. Loss axes start at 0 and accuracy axes span 0-1, and every validation
    point is labelled, so a one-epoch run is a labelled point on a full axis, not a dot on a ±4% one.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    by_step = bool(steps) and all("step" in h for h in history)
    xs = [h["step"] if by_step else h["epoch"] for h in history]
    if by_step:
        s = np.asarray([row[0] for row in steps], dtype=float)
        loss = np.asarray([row[2] for row in steps], dtype=float)
        ax1.plot(s, loss, "-", color="C0", alpha=0.35 if len(s) > 20 else 0.9, lw=1, label="train loss (step)")
        if len(s) > 20:
            window = max(2, len(s) // 20)
            mean = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax1.plot(s[window - 1 :], mean, "-", color="C0", lw=2, label=f"train loss (mean of {window} steps)")
    elif any("train_loss" in h for h in history):
        ax1.plot(xs, [h.get("train_loss", np.nan) for h in history], "-o", color="C0", label="train loss")
    values: list[float] = []
    if any("val_loss" in h for h in history):
        v = [h.get("val_loss", np.nan) for h in history]
        ax1.plot(xs, v, "-s", color="C1", label="val loss")
        _label_points(ax1, xs, v, "{:.3f}", len(history))
        values += v
    if by_step:
        values += list(loss)
    else:
        values += [h.get("train_loss", np.nan) for h in history]
    finite = [x for x in values if np.isfinite(x)]
    ax1.set_ylim(0, 1.1 * max(finite) if finite else 1)
    ax1.set_ylabel("loss")
    ax1.set_title("loss")
    for key, style in (("train_top1", "-o"), ("val_top1", "-s"), ("val_top5", "--s")):
        if any(key in h for h in history):
            v = [h.get(key, np.nan) for h in history]
            ax2.plot(xs, v, style, label=key.replace("_", " "))
            if key != "train_top1":
                _label_points(ax2, xs, v, "{:.1%}", len(history))
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("accuracy")
    ax2.set_title("accuracy (at each epoch's end)" if by_step else "accuracy")
    for ax in (ax1, ax2):
        ax.set_xlabel("optimizer step" if by_step else "epoch")
        if not by_step and xs:
            ax.set_xticks(xs if len(xs) <= 20 else xs[:: max(1, len(xs) // 10)])
        if len(xs) == 1 and not by_step:
            ax.set_xlim(xs[0] - 1, xs[0] + 1)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if by_step:
        ax2.set_xlim(ax1.get_xlim())  # both panels on the same step axis
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _label_points(ax, xs: Sequence[float], ys: Sequence[float], fmt: str, n: int) -> None:
    """Write the value next to each point of a short series (up to 12 points)."""
    if n > 12:
        return
    for x, y in zip(xs, ys, strict=True):
        if np.isfinite(y):
            ax.annotate(fmt.format(y), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)


def reliability_diagram(bins: dict[str, list[tuple[float, float, int]]], path: str | Path, title: str = "") -> Path:
    """Accuracy against confidence per bin, one series per calibration (e.g. before/after temperature)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for name, rows in bins.items():
        if rows:
            conf, acc, count = zip(*rows, strict=True)
            ax.plot(conf, acc, "-o", label=name)
            for c, a, n in rows:
                ax.annotate(str(n), (c, a), fontsize=6, alpha=0.6)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(title or "reliability diagram")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def confused_species(y: np.ndarray, pred: np.ndarray, top: int = 15) -> list[int]:
    """Classes involved in the most errors (as true or predicted label), most first."""
    errors = y != pred
    counts = np.bincount(np.concatenate([y[errors], pred[errors]]), minlength=1)
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
    return order[:top]


def confusion_plot(y: np.ndarray, pred: np.ndarray, labels: Sequence[str], path: str | Path, top: int = 15) -> Path:
    """Confusion matrix restricted to the species involved in the most errors (rows: true)."""
    plt = _plt()
    classes = confused_species(y, pred, top) or sorted(set(y.tolist()))[:top]
    pos = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(y, pred, strict=True):
        if t in pos and p in pos:
            matrix[pos[t], pos[p]] += 1
    size = max(5, 0.45 * len(classes) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    names = [labels[c] for c in classes]
    ax.set_xticks(range(len(classes)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), names, fontsize=7)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion among the most confused species")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
