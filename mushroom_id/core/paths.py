"""Where things live: the package's own data and the read-only ../shared folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # mushroom_id/ (this file is in mushroom_id/core/)
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"
CATALOG_CSV = DATA_DIR / "catalog.csv"
CONFUSIONS_CSV = DATA_DIR / "confusions.csv"  # the curated dangerous confusions, each with its source
EMBEDDED_MODEL_DIR = DATA_DIR / "embedded_model"
CACHE_DIR = Path.home() / ".cache" / "mushroom_id"  # features and model outputs, keyed by content


def shared_dir() -> Path:
    """The read-only shared data folder (``MUSHROOM_SHARED`` or ``../shared`` next to the repo)."""
    return Path(os.environ.get("MUSHROOM_SHARED", REPO_DIR.parent / "shared")).resolve()


def shared_catalog_dir() -> Path:
    return shared_dir() / "data" / "catalog"


def shared_photos_dir() -> Path:
    return shared_dir() / "data" / "photos"


def shared_manifest(photos_dir: Path | None = None) -> list[dict[str, str]]:
    """The rows of ``../shared/data/photos/manifest.csv`` (read in place; ``path`` is relative to its
    parent folder). The one reader of the shared photos' own manifest (the data pipeline's prepared
    manifest is read by ``engine.data.manifest_splits``)."""
    import csv

    photos_dir = Path(photos_dir or shared_photos_dir())
    with open(photos_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
