"""Build the embedded default model from the real photos in ../shared.

    python -m mushroom_id build-embedded        # ~2 min on 2 CPU cores

Steps: photos of catalog species -> exact/near-duplicate groups -> grouped split ->
frozen EfficientNet-Lite0 features -> linear head (+ nearest-centroid baseline) ->
temperature and thresholds fit on validation -> metrics on test -> saved in the Hub
layout with only the head's tensors (the backbone comes from the pip package).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .catalog import Catalog, default_catalog
from .dedup import duplicate_groups
from .features import cached_features
from .metrics import (
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    softmax,
    top_k_accuracy,
    toxic_as_non_toxic_rate,
)
from .models import LITE0_PIP, imagenet_backbone, save_model
from .paths import EMBEDDED_MODEL_DIR, shared_photos_dir
from .safety import conformal_qhat
from .splits import grouped_split

CACHE_DIR = Path.home() / ".cache" / "mushroom_id"


def photo_table(catalog: Catalog, photos_dir: Path | None = None) -> list[dict]:
    """All manifest rows of the shared photos; ``species`` is the catalog's accepted name or None."""
    photos_dir = photos_dir or shared_photos_dir()
    manifest = photos_dir / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: put the shared data folder at ../shared")
    rows = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            accepted = catalog.resolve(row["species"])
            rows.append({**row, "species": accepted, "file": str(photos_dir.parent / row["path"])})
    rows.sort(key=lambda r: r["path"])
    return rows


def split_photos(rows: list[dict], seed: int = 0) -> dict[str, str]:
    groups = duplicate_groups([r["file"] for r in rows])
    for r in rows:
        r["group"] = groups[r["file"]]
    # photos of taxa outside the catalog still take part, so their duplicates stay on one side
    return grouped_split([(r["file"], r["species"] or "~other", r["group"]) for r in rows], seed=seed)


HEAD_GRID = [  # (class-balance power, learning rate): chosen on validation, see build_embedded
    (0.5, 0.01), (1.0, 0.001), (1.0, 0.01), (0.0, 0.003),
]


def train_linear_head(
    x: np.ndarray, y: np.ndarray, num_classes: int, steps: int = 400, lr: float = 0.01,
    weight_decay: float = 1e-3, balance: float = 0.5, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression on standardised features, folded back to raw features.

    Class weights are 1 / count**balance (0: none, 1: fully balanced); the shared photos
    hold ~300 photos of four species and one photo of most others.
    """
    torch.manual_seed(seed)
    mu, sigma = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sigma, dtype=torch.float32)
    yt = torch.tensor(y)
    counts = np.bincount(y, minlength=num_classes).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, 1.0 / np.maximum(counts, 1) ** balance, 0.0), dtype=torch.float32)
    head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights / weights[weights > 0].mean())
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(head(xt), yt).backward()
            opt.step()
            sched.step()
    w = head.weight.detach().numpy() / sigma
    b = head.bias.detach().numpy() - w @ mu
    return w, b


def nearest_centroid_logits(x_train, y_train, x_eval, num_classes) -> np.ndarray:
    """Cosine similarity to each class's mean feature (classes without photos get -inf)."""
    def norm(a):
        return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-9)

    xn = norm(x_train)
    centroids = np.zeros((num_classes, x_train.shape[1]))
    np.add.at(centroids, y_train, xn)
    present = np.bincount(y_train, minlength=num_classes) > 0
    sims = norm(x_eval) @ norm(centroids).T
    sims[:, ~present] = -np.inf
    return sims * 20.0  # a fixed scale so softmax gives usable probabilities


def evaluate_probs(probs, y, labels, catalog) -> dict:
    dangerous = [catalog.edibility(n) in {"deadly", "poisonous", "psychoactive"} for n in labels]
    pred = probs.argmax(1)
    per_species = {}
    for c in np.unique(y):
        m = y == c
        per_species[c] = (top_k_accuracy(probs[m], y[m], 1), top_k_accuracy(probs[m], y[m], 5))
    return {
        "images": int(len(y)),
        "species": int(len(per_species)),
        "top1": top_k_accuracy(probs, y, 1),
        "top5": top_k_accuracy(probs, y, 5),
        "top1_species_mean": float(np.mean([v[0] for v in per_species.values()])),
        "top5_species_mean": float(np.mean([v[1] for v in per_species.values()])),
        "macro_f1": macro_f1(y, pred, len(labels)),
        "toxic_as_non_toxic": toxic_as_non_toxic_rate(y, pred, dangerous),
        "ece": expected_calibration_error(probs, y),
    }


def build_embedded(out_dir: Path = EMBEDDED_MODEL_DIR, seed: int = 0, coverage: float = 0.9) -> dict:
    catalog = default_catalog()
    rows = photo_table(catalog)
    split = split_photos(rows, seed=seed)
    for r in rows:
        r["split"] = split[r["file"]]
    train_species = sorted({r["species"] for r in rows if r["split"] == "train" and r["species"]})
    labels = train_species
    index = {n: i for i, n in enumerate(labels)}

    backbone = imagenet_backbone()
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config(model=backbone), is_training=False)
    feats = cached_features(
        backbone, transform, [r["file"] for r in rows], [r["sha256"] for r in rows], CACHE_DIR, "lite0-224"
    )
    part = {s: np.array([r["split"] == s for r in rows]) for s in ("train", "validation", "test")}
    y_all = np.array([index.get(r["species"] or "", -1) for r in rows])
    for s in part:  # held-out photos of species without a training photo cannot be scored
        part[s] &= y_all >= 0
    xs = {s: feats[m] for s, m in part.items()}
    ys = {s: y_all[m] for s, m in part.items()}

    candidates = []
    for balance, lr in HEAD_GRID:
        w, b = train_linear_head(xs["train"], ys["train"], len(labels), lr=lr, balance=balance, seed=seed)
        val = softmax(xs["validation"] @ w.T + b)
        score = top_k_accuracy(val, ys["validation"], 1) + top_k_accuracy(val, ys["validation"], 5)
        candidates.append((score, balance, lr, w, b))
    _, balance, lr, w, b = max(candidates, key=lambda c: c[0])
    logits = {s: xs[s] @ w.T + b for s in part}
    temperature = fit_temperature(logits["validation"], ys["validation"])
    val_probs = softmax(logits["validation"], temperature)
    qhat = conformal_qhat(val_probs, ys["validation"], coverage)

    test_raw = softmax(logits["test"], 1.0)
    test_cal = softmax(logits["test"], temperature)
    centroid = softmax(nearest_centroid_logits(xs["train"], ys["train"], xs["test"], len(labels)))
    report = {
        "labels": len(labels),
        "photos": {s: int(m.sum()) for s, m in part.items()},
        "photos_total": len(rows),
        "duplicate_groups": len({r["group"] for r in rows}),
        "temperature": temperature,
        "head": {"balance": balance, "lr": lr, "grid_validation_top1_plus_top5": [round(c[0], 4) for c in candidates]},
        "conformal": {"coverage_target": coverage, "qhat": qhat},
        "test": {
            "nearest_centroid": evaluate_probs(centroid, ys["test"], labels, catalog),
            "linear_head": evaluate_probs(test_cal, ys["test"], labels, catalog),
        },
        "test_ece_before_temperature": expected_calibration_error(test_raw, ys["test"]),
        "test_conformal_coverage": float(np.mean(test_cal[np.arange(len(ys["test"])), ys["test"]] >= 1 - qhat)),
    }
    backbone.reset_classifier(len(labels))
    with torch.no_grad():
        backbone.classifier.weight.copy_(torch.tensor(w))
        backbone.classifier.bias.copy_(torch.tensor(b))
    save_model(
        backbone, out_dir, labels, temperature=temperature, base_weights=LITE0_PIP,
        keep_keys=["classifier.weight", "classifier.bias"],
        extra={
            "model_id": "embedded-lite0-frozen",
            "frozen_backbone": True,
            "thresholds": {"conformal_qhat": qhat, "conformal_coverage": coverage},
            "trained_on": "../shared/data/photos (train split), see metrics.json",
        },
    )
    (Path(out_dir) / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    split_counts = Counter((r["split"], r["species"] in index) for r in rows)
    report["split_counts"] = {f"{s}{'' if ok else ' (not a model species)'}": n for (s, ok), n in split_counts.items()}
    return report
