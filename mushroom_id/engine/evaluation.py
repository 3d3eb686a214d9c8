"""Evaluation engine shared by training (every epoch, and at the end) and ``python -m mushroom_id.evaluate``.

``predict`` runs a model over a loader, across processes when given an Accelerator, and
returns each sample exactly once (``gather_for_metrics`` drops the padding of the last
batch). ``report`` turns logits into the metrics of the original project and the safety
metrics of FungiCLEF; all metric math lives in :mod:`mushroom_id.engine.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mushroom_id.core.catalog import DANGEROUS, EDIBLE, Catalog, default_catalog
from mushroom_id.engine.metrics import (
    expected_calibration_error,
    fungiclef_cost,
    macro_f1,
    most_confused_pairs,
    nll,
    per_class_prf,
    reliability_bins,
    softmax,
    top_k_accuracy,
    toxic_as_non_toxic_rate,
)


def quick_metrics(logits: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, float]:
    """The per-epoch validation numbers (no catalog needed)."""
    probs = softmax(logits)
    return {
        "loss": nll(probs, y),
        "top1": top_k_accuracy(probs, y, 1),
        "top5": top_k_accuracy(probs, y, 5),
        "macro_f1": macro_f1(y, probs.argmax(1), num_classes),
        "images": int(len(y)),
    }


def species_mean_accuracy(probs: np.ndarray, y: np.ndarray, k: int) -> float:
    """Top-k accuracy averaged over species (each species counts once, however many photos it has)."""
    values = [top_k_accuracy(probs[y == c], y[y == c], k) for c in np.unique(y)]
    return float(np.mean(values)) if values else float("nan")


def genus_top1_species_mean(probs: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> float:
    """Species-balanced accuracy of the top-1 species' genus (each species counts once)."""
    genera = np.array([name.split(" ", 1)[0] for name in labels])
    hit = genera[probs.argmax(1)] == genera[y]
    values = [hit[y == c].mean() for c in np.unique(y)]
    return float(np.mean(values)) if values else float("nan")


def report(
    logits: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    temperature: float = 1.0,
    catalog: Catalog | None = None,
    top_confused: int = 10,
) -> dict:
    """All evaluation metrics of one split; probabilities use ``temperature`` (1.0: uncalibrated).

    The headline numbers are species-balanced (``*_species_mean``: the mean over species of each
    species' accuracy); ``top1``/``top5`` weigh every photo equally and flatter species with many photos.
    """
    catalog = catalog or default_catalog()
    if len(y) == 0:
        return {"images": 0, "species": 0}
    probs = softmax(logits, temperature)
    raw = softmax(logits, 1.0)
    pred = probs.argmax(1)
    toxic, edible = catalog.mask(labels, DANGEROUS), catalog.mask(labels, EDIBLE)
    return {
        "images": int(len(y)),
        "species": int(len(np.unique(y))),
        "top1": top_k_accuracy(probs, y, 1),
        "top5": top_k_accuracy(probs, y, 5),
        "top1_species_mean": species_mean_accuracy(probs, y, 1),
        "top5_species_mean": species_mean_accuracy(probs, y, 5),
        "genus_top1_species_mean": genus_top1_species_mean(probs, y, labels),
        "macro_f1": macro_f1(y, pred, len(labels)),
        "loss": nll(probs, y),
        "loss_uncalibrated": nll(raw, y),
        "toxic_as_non_toxic": toxic_as_non_toxic_rate(y, pred, toxic),
        "toxic_specimens": int(toxic[y].sum()) if len(y) else 0,
        "fungiclef_cost": fungiclef_cost(y, pred, toxic, edible),
        "temperature": float(temperature),
        "ece": expected_calibration_error(probs, y),
        "ece_uncalibrated": expected_calibration_error(raw, y),
        "most_confused": [list(p) for p in most_confused_pairs(y, pred, labels, top=top_confused)],
    }


def per_species_rows(
    logits: np.ndarray, y: np.ndarray, labels: Sequence[str], catalog: Catalog | None = None, temperature: float = 1.0
) -> list[dict]:
    """One row per species with evaluation samples or predictions: precision, recall, F1, support."""
    catalog = catalog or default_catalog()
    probs = softmax(logits, temperature)
    pred = probs.argmax(1)
    prf = per_class_prf(y, pred, len(labels))
    predicted = np.bincount(pred, minlength=len(labels))
    rows = []
    for c, name in enumerate(labels):
        if prf["support"][c] == 0 and predicted[c] == 0:
            continue
        m = y == c
        rows.append(
            {
                "species": name,
                "edibility": catalog.edibility(name),
                "support": int(prf["support"][c]),
                "predicted": int(predicted[c]),
                "precision": round(float(prf["precision"][c]), 4),
                "recall": round(float(prf["recall"][c]), 4),
                "f1": round(float(prf["f1"][c]), 4),
                "top5": round(top_k_accuracy(probs[m], y[m], 5), 4) if m.any() else "",
            }
        )
    return rows


def reliability(logits: np.ndarray, y: np.ndarray, temperature: float) -> dict[str, list]:
    return {
        "uncalibrated": reliability_bins(softmax(logits, 1.0), y),
        "calibrated": reliability_bins(softmax(logits, temperature), y),
    }


def run_folder(model_folder: str | Path | None) -> Path | None:
    """The train.py run a model folder belongs to (``runs/<name>/{model,best,export}``), or None."""
    if model_folder is None:
        return None
    folder = Path(model_folder)
    if folder.name in ("model", "best", "export") and (folder.parent / "config.yaml").is_file():
        return folder.parent
    return None


def _slug(text: str) -> str:
    """``artifacts/data/dataset`` -> ``artifacts--data--dataset``: a file-name-safe tag of a data spec."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.replace("/", "--"))
    return cleaned.strip("-.") or "data"


def default_eval_dir(model_folder: str | Path | None, model_id: str, data: str, split: str) -> Path:
    """Where an evaluation writes when not told: beside the model's train.py run
    (``runs/<name>/eval-<data>-<split>``), otherwise ``runs/eval/<model_id>-<data>-<split>`` (never into
    the package's embedded model folder; ``runs/`` is git-ignored)."""
    tag = f"{_slug(data)}-{_slug(split)}"
    run = run_folder(model_folder)
    if run is not None:
        return run / f"eval-{tag}"
    return Path("runs") / "eval" / f"{_slug(model_id)}-{tag}"


def run_history(model_folder: str | Path | None) -> tuple[list[dict] | None, list[list[float]] | None]:
    """(per-epoch rows of ``metrics.json``, per-step rows of ``steps.csv``) of the train.py run a model
    folder belongs to, for :func:`mushroom_id.engine.plots.training_curves`; (None, None) otherwise."""
    import json

    run = run_folder(model_folder)
    if run is None or not (run / "metrics.json").is_file():
        return None, None
    history = json.loads((run / "metrics.json").read_text())
    steps = None
    if (run / "steps.csv").is_file():
        rows = [line.split(",") for line in (run / "steps.csv").read_text().splitlines()[1:] if line]
        steps = [[int(r[0]), int(r[1]), float(r[2]), float(r[3])] for r in rows]
    return history, steps
