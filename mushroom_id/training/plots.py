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


def training_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train vs validation (keys train_loss, val_loss, train_top1, val_top1, val_top5)."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        if any(key in h for h in history):
            ax1.plot(epochs, [h.get(key, np.nan) for h in history], style, label=key.replace("_", " "))
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.set_title("loss")
    for key, style in (("train_top1", "-o"), ("val_top1", "-s"), ("val_top5", "--s")):
        if any(key in h for h in history):
            ax2.plot(epochs, [h.get(key, np.nan) for h in history], style, label=key.replace("_", " "))
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    ax2.legend()
    ax2.set_title("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


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
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion among the most confused species")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
