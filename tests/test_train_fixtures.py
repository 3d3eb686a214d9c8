"""Builders and fixtures shared by the training, evaluation and export tests (no tests here).

Datasets are built in temporary folders from a few real photos read in place from ../shared.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

# deadly, poisonous, edible, edible
SPECIES = ["Amanita virosa", "Amanita muscaria", "Boletus edulis", "Cantharellus cibarius"]
PER_SPLIT = {"train": 4, "validation": 2, "test": 2}


def photo_files(photos_dir: Path, species: list[str] = SPECIES, per_split: dict[str, int] = PER_SPLIT) -> dict:
    """{split: [(path, species)]}: distinct iNaturalist Sweden photos, deterministic."""
    with open(photos_dir / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "inatse" and r["species"] in species]
    out: dict[str, list] = {s: [] for s in per_split}
    for sp in species:
        files = sorted(photos_dir.parent / r["path"] for r in rows if r["species"] == sp)
        start = 0
        for split, n in per_split.items():
            out[split] += [(p, sp) for p in files[start : start + n]]
            start += n
    return out


def write_hub_dataset(
    root: Path, photos_dir: Path, species: list[str] = SPECIES, per_split: dict[str, int] = PER_SPLIT
) -> Path:
    """A folder in the Hub dataset layout (data/<split>-00000-of-00001.parquet, image bytes embedded)."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=sorted(species)),
            "species": datasets.Value("string"),
        }
    )
    index = {n: i for i, n in enumerate(sorted(species))}
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, items in photo_files(photos_dir, species, per_split).items():
        ds = datasets.Dataset.from_dict(
            {
                "image": [{"bytes": p.read_bytes(), "path": p.name} for p, _ in items],
                "label": [index[s] for _, s in items],
                "species": [s for _, s in items],
            },
            features=features,
        )
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def write_image_folder(root: Path, photos_dir: Path, with_splits: bool = True) -> Path:
    """<root>/<split>/<Genus_species>/*.jpg (or without the split level) as symlinks to the real photos."""
    for split, items in photo_files(photos_dir).items():
        for p, sp in items:
            folder = root / split if with_splits else root
            d = folder / sp.replace(" ", "_")
            d.mkdir(parents=True, exist_ok=True)
            (d / p.name).symlink_to(p)
    return root


def tiny_config(out: Path, data: Path, **overrides):
    from mushroom_id.engine.config import load_config

    values = dict(
        name="tiny",
        model="test_efficientnet",
        pretrained="none",
        img_size=48,
        data=str(data),
        output_dir=str(out),
        epochs=2,
        batch_size=4,
        num_workers=0,
        lr=0.01,
        warmup_epochs=0.5,
        auto_augment=None,
        color_jitter=0.0,
        label_smoothing=0.0,
        seed=0,
    )
    values.update(overrides)
    return load_config(None, values)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for a whole test module (import this fixture into it to use it). On a small shared machine,
    OpenMP threads spin-waiting for a busy core made tiny training steps up to 10x slower (all 9 configs
    of test_configs.py: 7 min 50 s with 2 threads, 70 s with one; ECOSYSTEM.md: OMP_NUM_THREADS=1
    trained faster on 2 cores). Subprocesses get OMP_NUM_THREADS=1 for the same reason."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
