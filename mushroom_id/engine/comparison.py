"""Evaluate loaded models on a dataset split and compare them (behind ``python -m mushroom_id.evaluate``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.inference import cached_features, run
from mushroom_id.core.io import atomic_write_json, write_csv
from mushroom_id.core.models import LoadedModel
from mushroom_id.engine.calibration import fit_temperature
from mushroom_id.engine.data import DataSplits, load_splits, remap
from mushroom_id.engine.evaluation import (
    per_species_rows,
    reliability,
    report,
)
from mushroom_id.engine.metrics import softmax
from mushroom_id.engine.plots import confusion_plot, reliability_diagram, training_curves

TABLE_COLUMNS = [
    ("top1_species_mean", "top-1 (species-balanced)"),
    ("top5_species_mean", "top-5 (species-balanced)"),
    ("genus_top1_species_mean", "genus top-1"),
    ("macro_f1", "macro-F1"),
    ("toxic_as_non_toxic", "toxic as non-toxic"),
    ("fungiclef_cost", "FungiCLEF cost"),
    ("ece", "ECE"),
    ("top1", "top-1 (per photo)"),
]
SUBSET_TITLES = {
    "cross_source": "cross-source: species whose test photos come from sources they did not train on",
    "single_source": "single-source species (ordinary grouped split, same source in train and test)",
    "all": "all held-out photos",
}


def subset_masks(data: DataSplits, split: str) -> dict[str, np.ndarray]:
    """Which held-out samples count as cross-source (headline) and which as single-source."""
    y = data[split].targets
    if data.cross_source is None:
        return {"all": np.ones(len(y), dtype=bool)}
    crossed = np.array([data.labels[t] in data.cross_source for t in y], dtype=bool)
    return {"cross_source": crossed, "single_source": ~crossed}


def subset_reports(
    logits: np.ndarray,
    y: np.ndarray,
    masks: dict[str, np.ndarray],
    labels: list[str],
    temperature: float,
    catalog: Catalog,
) -> dict[str, dict]:
    return {kind: report(logits[m], y[m], labels, temperature, catalog) for kind, m in masks.items()}


def model_logits(
    loaded: LoadedModel, data: DataSplits, split: str, accelerator=None, batch_size: int = 64, workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    ds = data[split].with_transform(loaded.transform())
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    out = run(loaded.model, loader, accelerator=accelerator, desc=f"{loaded.model_id} {split}")
    return out.first, out.y


def load_history(path: str | Path | None) -> list[dict] | None:
    """Per-epoch rows of a training run (metrics.json or metrics.csv)."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import csv

    with open(path, newline="") as f:
        return [
            {k: (float(v) if v not in ("", "True", "False") and k != "optimizer" else v) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def write_outputs(
    out_dir: Path,
    metrics: dict,
    logits: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    temperature: float,
    catalog: Catalog,
    history: list[dict] | None = None,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "metrics.json", metrics)
    write_csv(out_dir / "per_species.csv", per_species_rows(logits, y, labels, catalog, temperature))
    reliability_diagram(
        reliability(logits, y, temperature), out_dir / "reliability.png", title=f"reliability (T={temperature:.2f})"
    )
    confusion_plot(y, softmax(logits, temperature).argmax(1), labels, out_dir / "confusion.png")
    if history:
        training_curves(history, out_dir / "training_curves.png")


def evaluate_loaded(
    loaded: LoadedModel,
    data: DataSplits | str,
    split: str = "test",
    out_dir: str | Path | None = None,
    fit_temperature_on: str | None = None,
    history: list[dict] | None = None,
    accelerator=None,
    batch_size: int = 64,
    workers: int = 2,
    catalog: Catalog | None = None,
) -> dict:
    """Metrics of ``loaded`` on ``split`` (files written to ``out_dir`` when given)."""
    catalog = catalog or default_catalog()
    data = load_splits(data, labels=loaded.labels, catalog=catalog) if isinstance(data, str) else data
    data = remap(data, loaded.labels)
    temperature = loaded.temperature
    if fit_temperature_on:
        val_logits, val_y = model_logits(loaded, data, fit_temperature_on, accelerator, batch_size, workers)
        temperature = fit_temperature(val_logits, val_y)
    logits, y = model_logits(loaded, data, split, accelerator, batch_size, workers)
    metrics = report(logits, y, loaded.labels, temperature, catalog)
    metrics.update(
        {
            "model": loaded.model_id,
            "data": data.source,
            "split": split,
            "skipped_not_in_model": data.dropped.get(split, 0),
            "subsets": subset_reports(logits, y, subset_masks(data, split), loaded.labels, temperature, catalog),
            "leak": training_overlap(loaded, data, split),
        }
    )
    if out_dir is not None:
        metrics["out_dir"] = str(out_dir)
    if out_dir is not None and (accelerator is None or accelerator.is_main_process):
        write_outputs(Path(out_dir), metrics, logits, y, loaded.labels, temperature, catalog, history)
    return metrics


def nearest_centroid_metrics(data: DataSplits, split: str = "test", catalog: Catalog | None = None) -> dict:
    """Baseline: cosine similarity to each species' mean ImageNet Lite0 feature on the training split."""
    from mushroom_id.core.models import imagenet_model
    from mushroom_id.engine.candidates import nearest_centroid_logits

    backbone = imagenet_model()
    train, held_out = (
        cached_features(backbone.model, backbone.transform(), data[s], list(data[s].keys), "lite0-pooled")
        for s in ("train", split)
    )
    logits = nearest_centroid_logits(train, data["train"].targets, held_out, len(data.labels))
    y = data[split].targets
    metrics = report(logits, y, data.labels, 1.0, catalog)
    metrics.update(
        {
            "model": "floor: nearest class-mean, frozen ImageNet Lite0 features",
            "data": data.source,
            "split": split,
            "subsets": subset_reports(
                logits, y, subset_masks(data, split), data.labels, 1.0, catalog or default_catalog()
            ),
        }
    )
    return metrics


def training_overlap(loaded: LoadedModel, data: DataSplits, split: str) -> int:
    """How many evaluation photos the model trained on (by content hash: the sha256 of the photo's bytes,
    whatever the data layout, against the model's ``training_images.txt``); 0 when the model does not
    list its training photos."""
    folder = loaded.folder
    listed = folder / "training_images.txt" if folder else None
    if listed is None or not listed.is_file():
        return 0
    seen = set(listed.read_text().split())
    ds = data[split]
    other = ds.other_hashes or [""] * len(ds.keys)
    overlap = sum(k in seen or o in seen for k, o in zip(ds.keys, other, strict=True))
    if overlap:
        print(
            f"WARNING: {overlap} of {len(data[split])} {split} photos are in {loaded.model_id}'s training set: "
            "its numbers on this split are not held-out numbers",
            file=sys.stderr,
        )
    return overlap


def comparison_table(results: list[dict], subset: str | None = None) -> str:
    """Markdown table, one row per model (``subset``: one of :data:`SUBSET_TITLES`' keys)."""
    head = "| model | photos | species | " + " | ".join(title for _, title in TABLE_COLUMNS) + " |"
    rule = "|---|---:|---:|" + "---:|" * len(TABLE_COLUMNS)
    rows = []
    for full in results:
        r = full.get("subsets", {}).get(subset, full) if subset else full
        cells = []
        for key, _ in TABLE_COLUMNS:
            v = r.get(key)
            cells.append(
                "n/a"
                if v is None or (isinstance(v, float) and not np.isfinite(v))
                else f"{v:.3f}"
                if key in ("ece", "fungiclef_cost")
                else f"{100 * v:.1f}%"
            )
        leak = " (TRAINED ON THESE PHOTOS)" if full.get("leak") else ""
        rows.append(
            f"| {full['model']}{leak} | {r.get('images', 0)} | {r.get('species', 0)} | " + " | ".join(cells) + " |"
        )
    return "\n".join([head, rule, *rows])


def comparison_tables(results: list[dict]) -> str:
    """One table per subset (cross-source first), or one table when the data has no sources."""
    kinds = [k for k in SUBSET_TITLES if any(k in r.get("subsets", {}) for r in results)]
    if kinds in ([], ["all"]):  # no sources in the data: one table, no title
        return comparison_table(results)
    return "\n\n".join(f"**{SUBSET_TITLES[k]}**\n\n{comparison_table(results, k)}" for k in kinds)
