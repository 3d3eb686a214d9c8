"""'This answer is wrong' reports: stored as a dataset that ``datasets.load_dataset`` reads.

Folder layout (the Hub dataset layout, so the same folder works locally and as a Hub dataset)::

    <flags dir>/README.md                  YAML ``configs`` pointing at data/*.jsonl
    <flags dir>/data/flags-<uuid>.jsonl    one JSON object per report (one file per app process)
    <flags dir>/photos/<sha256>.<ext>      the photo, ONLY when the user ticked the box

    datasets.load_dataset("<flags dir>")["train"]   # columns: see FIELDS

Where: ``$MUSHROOM_FLAGS_DIR``, else ``~/.cache/mushroom_id/flags``. On a Space, set
``MUSHROOM_FLAGS_REPO=<org>/<dataset>`` (and an ``HF_TOKEN`` secret with write access): the folder is
then pushed to that Hub dataset every few minutes by ``huggingface_hub.CommitScheduler``, the pattern
Gradio's documentation gives for saving user data to the Hub (it replaced
``gr.HuggingFaceDatasetSaver``). Writes take the scheduler's lock so a push never sees half a line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from mushroom_id.core.io import atomic_path
from mushroom_id.core.paths import CACHE_DIR

log = logging.getLogger(__name__)

FLAGS_DIR_ENV = "MUSHROOM_FLAGS_DIR"
FLAGS_REPO_ENV = "MUSHROOM_FLAGS_REPO"
PUSH_EVERY_MINUTES = 5
MAX_NOTE = 500
FIELDS = (
    "time",  # UTC, ISO 8601
    "photo_sha256",  # list: one hash per photo of the request
    "model_id",
    "model_answer",  # the most likely species ("" when the photo was not taken for a fungus)
    "model_probability",
    "model_candidates",  # list: the top-k species, most likely first
    "user_species",  # the accepted catalog name when the user's answer resolves, else their text
    "user_species_in_catalog",
    "user_note",
    "photo_stored",  # the user ticked "store my photo"
    "photo_files",  # list: paths inside the folder ([] unless photo_stored)
)
README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.jsonl
dataset_info:
  features:
  - name: time
    dtype: timestamp[s, tz=UTC]
  - name: photo_sha256
    sequence: string
  - name: model_id
    dtype: string
  - name: model_answer
    dtype: string
  - name: model_probability
    dtype: float64
  - name: model_candidates
    sequence: string
  - name: user_species
    dtype: string
  - name: user_species_in_catalog
    dtype: bool
  - name: user_note
    dtype: string
  - name: photo_stored
    dtype: bool
  - name: photo_files
    sequence: string
license: other
task_categories:
- image-classification
---
# Mushroom identifier: "this answer is wrong" reports

One row per report from the app: photo hashes, the model's answer and the species the user named.
Photos are present (`photo_files`) only when the user ticked the box allowing it.
"""


def default_flags_dir() -> Path:
    return Path(os.environ.get(FLAGS_DIR_ENV) or CACHE_DIR / "flags")


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FlagStore:
    """Appends reports to ``data/flags-<uuid>.jsonl`` in ``folder``."""

    def __init__(self, folder: str | Path | None = None, scheduler=None):
        self.folder = Path(folder) if folder is not None else default_flags_dir()
        self.scheduler = scheduler  # a huggingface_hub.CommitScheduler, or None
        self.file = self.folder / "data" / f"flags-{uuid.uuid4().hex}.jsonl"
        self._lock = scheduler.lock if scheduler is not None else threading.Lock()

    @classmethod
    def from_env(cls) -> FlagStore:
        """The store the app uses: local, plus a push to ``$MUSHROOM_FLAGS_REPO`` when set."""
        folder = default_flags_dir()
        repo = os.environ.get(FLAGS_REPO_ENV, "").strip()
        scheduler = None
        if repo:
            try:
                from huggingface_hub import CommitScheduler

                folder.mkdir(parents=True, exist_ok=True)
                scheduler = CommitScheduler(
                    repo_id=repo,
                    repo_type="dataset",
                    folder_path=folder,
                    every=PUSH_EVERY_MINUTES,
                    private=True,
                )
            except Exception as e:  # no token, no network: keep the reports locally
                log.warning("flags are kept locally in %s; pushing to %s failed: %s", folder, repo, type(e).__name__)
        return cls(folder, scheduler)

    def _ensure_layout(self) -> None:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        readme = self.folder / "README.md"
        if not readme.exists():
            readme.write_text(README, encoding="utf-8")

    def add(
        self,
        result: dict,
        photo_paths: list[str],
        user_species: str,
        *,
        in_catalog: bool,
        store_photo: bool = False,
        note: str = "",
    ) -> dict:
        """Store one report and return the stored row."""
        hashes = [sha256_file(p) for p in photo_paths]
        candidates = result.get("candidates") or []
        row = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "photo_sha256": hashes,
            "model_id": str((result.get("model") or {}).get("id") or ""),
            "model_answer": candidates[0]["species"] if candidates else "",
            "model_probability": float(candidates[0]["probability"]) if candidates else 0.0,
            "model_candidates": [c["species"] for c in candidates],
            "user_species": " ".join(str(user_species).split())[:200],
            "user_species_in_catalog": bool(in_catalog),
            "user_note": " ".join(str(note or "").split())[:MAX_NOTE],
            "photo_stored": bool(store_photo),
            "photo_files": [],
        }
        with self._lock:
            self._ensure_layout()
            if store_photo:
                (self.folder / "photos").mkdir(exist_ok=True)
                for path, digest in zip(photo_paths, hashes, strict=True):
                    suffix = Path(path).suffix.lower() or ".jpg"
                    rel = f"photos/{digest}{suffix}"
                    if not (self.folder / rel).exists():
                        with atomic_path(self.folder / rel) as tmp:
                            shutil.copyfile(path, tmp)
                    row["photo_files"].append(rel)
            with open(self.file, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return row
