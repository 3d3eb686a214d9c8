"""Datasets for training and evaluation, from any of four sources:

``shared-photos``         the real photos in ../shared/data/photos, taken in by the data pipeline
                          (``data_prep.pipeline.prepare_folder``: ingest, dedup, normalize, cross-source
                          split; once, into ``artifacts/shared-photos``), then read as a work folder
``<data_prep work folder>`` a folder holding ``manifest.csv`` (``python -m data_prep ...``): its split
``<folder in Hub layout>`` what ``data_prep publish`` writes (``data/<split>-*.parquet``): read with
                          ``datasets.load_dataset(folder)``, columns ``image``, ``label`` (ClassLabel)
``<org/name>``            the same on the Hugging Face Hub (needs the network)
``<image folder>``        ``<root>/<Genus_species>/*.jpg`` (split here, duplicate-grouped) or
                          ``<root>/<split>/<Genus_species>/*.jpg``

Every source becomes :class:`LabeledImages`: an image loader plus integer labels into one label list,
keyed by the sha256 of each photo's bytes whatever the layout (so a model's list of training photos,
``training_images.txt``, recognises them in any other layout). Split folders and Hub-layout data are
scanned before use: unreadable images are listed with where they are and left out, as the data
pipeline does for flat folders.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data_prep.split import EVALUATION_HELD_OUT_CAP
from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.images import ImageError, load_image
from mushroom_id.core.paths import REPO_DIR, shared_photos_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
SPLIT_ALIASES = {"validation": ("validation", "val", "valid"), "train": ("train",), "test": ("test",)}


class LabeledImages(torch.utils.data.Dataset):
    """Images with integer labels; items are ``(tensor, label, index)`` once a transform is set.

    The index lets distributed evaluation prove that every sample is counted exactly once.
    """

    def __init__(
        self,
        load: Callable[[int], Image.Image],
        labels: Sequence[int],
        keys: Sequence[str],
        transform=None,
        other_hashes: Sequence[str] = (),
    ):
        self._load = load
        self.targets = np.asarray(labels, dtype=np.int64)
        self.keys = list(keys)  # sha256 of each photo's bytes: caches, and "trained on these photos"
        self.transform = transform
        # hashes of other copies of these photos (a data_prep work folder: the normalized JPEGs it publishes)
        self.other_hashes = list(other_hashes)

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, i: int) -> Image.Image:
        return self._load(i)

    def with_transform(self, transform) -> LabeledImages:
        return LabeledImages(self._load, self.targets, self.keys, transform, self.other_hashes)

    def subset(self, indices: Sequence[int]) -> LabeledImages:
        indices = list(indices)
        other = [self.other_hashes[i] for i in indices] if self.other_hashes else []
        return LabeledImages(
            _Reindexed(self._load, indices),
            self.targets[indices],
            [self.keys[i] for i in indices],
            self.transform,
            other,
        )

    def content_hashes(self) -> list[str]:
        """Every sha256 these photos are known by (what a model lists in ``training_images.txt``)."""
        return [h for h in (*self.keys, *self.other_hashes) if h]

    def __getitem__(self, i: int):
        img = self._load(i)
        return (self.transform(img) if self.transform else img), int(self.targets[i]), i


@dataclass
class DataSplits:
    labels: list[str]  # the label space (model classes)
    splits: dict[str, LabeledImages]
    source: str
    dropped: dict[str, int]  # held-out samples whose species is outside the label space
    # species whose validation/test photos come only from sources their training photos do not come from
    # (None: the data carries no source information)
    cross_source: frozenset[str] | None = None

    def __getitem__(self, split: str) -> LabeledImages:
        for name in SPLIT_ALIASES.get(split, (split,)):
            if name in self.splits:
                return self.splits[name]
        raise KeyError(f"{self.source} has no split {split!r}; it has {sorted(self.splits)}")


def species_name(raw: str, catalog: Catalog | None) -> str:
    """Catalog-accepted name for a folder or dataset label (``Genus_species`` -> ``Genus species``)."""
    name = " ".join(str(raw).replace("_", " ").split())
    accepted = catalog.resolve(name) if catalog is not None else None
    return accepted or name


# Loaders are small classes, not closures, so datasets pickle into DataLoader workers under any start method.
class _FileLoader:
    def __init__(self, files: Sequence[str]):
        self.files = list(files)

    def __call__(self, i: int) -> Image.Image:
        return load_image(self.files[i])


class _HFLoader:
    def __init__(self, ds):
        self.ds = ds

    def __call__(self, i: int) -> Image.Image:
        img = self.ds[int(i)]["image"]
        return load_image(img) if isinstance(img, Image.Image) else load_image(img["bytes"])


class _Reindexed:
    def __init__(self, load: Callable[[int], Image.Image], indices: Sequence[int]):
        self.load, self.indices = load, list(indices)

    def __call__(self, i: int) -> Image.Image:
        return self.load(self.indices[i])


_file_loader, _hf_loader = _FileLoader, _HFLoader


def _labelled(
    per_split: dict[str, tuple[Callable[[int], Image.Image], list[str], list[str]]],
    labels: list[str] | None,
    source: str,
    train_split: str = "train",
) -> DataSplits:
    """Map species names to a label list: given (evaluation), or the training split's species."""
    if labels is None:
        train_names = per_split.get(train_split, (None, [], []))[1]
        if not train_names:
            raise ValueError(f"{source}: no training split {train_split!r} to take labels from")
        labels = sorted(set(train_names))
    index = {n: i for i, n in enumerate(labels)}
    splits, dropped = {}, {}
    for split, (load, names, keys, *other) in per_split.items():
        keep = [i for i, n in enumerate(names) if n in index]
        dropped[split] = len(names) - len(keep)
        if len(keep) != len(names):
            load = _Reindexed(load, keep)
        other_hashes = [other[0][i] for i in keep] if other else []
        targets = [index[names[i]] for i in keep]
        splits[split] = LabeledImages(load, targets, [keys[i] for i in keep], None, other_hashes)
    return DataSplits(labels=list(labels), splits=splits, source=source, dropped=dropped)


SHARED_WORK_DIR = REPO_DIR / "artifacts" / "shared-photos"
HELD_OUT_CAP = EVALUATION_HELD_OUT_CAP  # photos per species in validation and test (the dataset card quotes it)


def manifest_splits(
    work_dir: str | Path,
    labels: list[str] | None = None,
    catalog: Catalog | None = None,
    held_out_cap: int | None = HELD_OUT_CAP,
    source: str | None = None,
) -> DataSplits:
    """The kept, split images of a data_prep work folder (its ``manifest.csv``): THE manifest reader.

    Validation and test keep at most ``held_out_cap`` photos per species (chosen by a hash of their
    content, so always the same ones); ``cross_source`` names the species whose held-out photos come from
    sources they did not train on.
    """
    from data_prep.grouping import cross_source_species

    work_dir = Path(work_dir)
    file = work_dir / "manifest.csv"
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: run the data pipeline first (python -m data_prep ...)")
    with open(file, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok" and r["split"] and r["path"]]
    if not rows:
        raise ValueError(f"{file}: no split images (run `python -m data_prep split`)")
    crossed = cross_source_species([(r["species"], r.get("source") or r["crawler"], r["split"]) for r in rows])
    per_split: dict[str, tuple] = {}
    for name in ("train", "validation", "test"):
        chosen = sorted(
            (r for r in rows if r["split"] == name),
            key=lambda r: (r["species"], hashlib.sha256(r["raw_sha256"].encode()).hexdigest()),
        )
        if name != "train" and held_out_cap:
            seen: dict[str, int] = {}
            chosen = [
                r
                for r in chosen
                if (seen.__setitem__(r["species"], seen.get(r["species"], 0) + 1) or seen[r["species"]] <= held_out_cap)
            ]
        files = [str(work_dir / r["path"]) for r in chosen]
        names = [species_name(r["species"], catalog) for r in chosen]
        per_split[name] = (
            _file_loader(files),
            names,
            [r["raw_sha256"] for r in chosen],
            [r.get("sha256") or "" for r in chosen],  # the normalized JPEG (what `publish` ships)
        )
    data = _labelled(per_split, labels, source or str(work_dir))
    data.cross_source = frozenset(crossed)
    return data


def shared_photo_splits(
    labels: list[str] | None = None, catalog: Catalog | None = None, seed: int = 0, work_dir: Path | None = None
) -> DataSplits:
    """The shared photos through the data pipeline (prepared once; the split depends only on content)."""
    from data_prep.pipeline import prepare_folder

    folder = prepare_folder(shared_photos_dir(), work_dir or SHARED_WORK_DIR, seed=seed)
    return manifest_splits(folder, labels, catalog or default_catalog(), source="shared-photos")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _check_bytes(data: bytes | None) -> tuple[str, str | None]:
    """(sha256 of the bytes, None) when they decode as training will decode them, else (sha256, why not)."""
    if not data:
        return "", "empty (0 bytes)"
    digest = hashlib.sha256(data).hexdigest()
    try:
        load_image(data)
    except ImageError as e:
        return digest, str(e).replace("the uploaded data", "the file").replace("the image", "the file")
    return digest, None


def _check_file(path: str) -> tuple[str, str | None]:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return "", f"cannot be read ({e.strerror or e})"
    return _check_bytes(data)


def _scan_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))  # decoding releases the GIL: threads use the cores


def scan_images(
    where: Sequence[str], checks: Iterable[tuple[str, str | None]], what: str
) -> tuple[list[int], list[str]]:
    """(indices of the readable images, their sha256); the unreadable ones are listed on stderr with
    ``where`` (full path) and why, and left out, as the data pipeline drops them for flat folders."""
    good, hashes, bad = [], [], []
    for i, (digest, problem) in enumerate(checks):
        if problem is None:
            good.append(i)
            hashes.append(digest)
        else:
            bad.append(f"  {where[i]}: {problem}")
    if bad:
        print(
            f"WARNING: {len(bad)} of {len(where)} images in {what} cannot be read and are left out "
            "(delete or replace them to silence this):\n" + "\n".join(bad),
            file=sys.stderr,
        )
    return good, hashes


def image_folder_splits(
    root: Path, labels: list[str] | None = None, catalog: Catalog | None = None, seed: int = 0
) -> DataSplits:
    """``root/<split>/<Genus_species>/*`` as given, or ``root/<Genus_species>/*`` taken in and split by the
    data pipeline (``data_prep.pipeline.prepare_folder``: duplicate-grouped, 70/15/15 per species)."""
    catalog = catalog or default_catalog()
    split_dirs = {
        s: root / alias for s, aliases in SPLIT_ALIASES.items() for alias in aliases if (root / alias).is_dir()
    }
    per_split: dict[str, tuple] = {}
    if split_dirs:
        for split, folder in split_dirs.items():
            files, names = [], []
            for species_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
                for f in _image_files(species_dir):
                    files.append(str(f.absolute()))
                    names.append(species_name(species_dir.name, catalog))
            with ThreadPoolExecutor(_scan_workers()) as pool:
                good, hashes = scan_images(files, pool.map(_check_file, files), f"{folder}")
            per_split[split] = (_file_loader([files[i] for i in good]), [names[i] for i in good], hashes)
    else:  # through the data pipeline, like every other photo folder: one dedup, one split
        from data_prep.pipeline import prepare_folder
        from mushroom_id.core.paths import CACHE_DIR

        where = CACHE_DIR / "folders" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        work = prepare_folder(root, where, seed=seed, quiet=True)
        return manifest_splits(work, labels, catalog, held_out_cap=None, source=str(root))
    return _labelled(per_split, labels, str(root))


def _hub_image_checks(ds) -> Iterable[tuple[str, str | None]]:
    """sha256 and readability of each image of a ``datasets`` split, from its encoded bytes."""
    import datasets

    raw = ds.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
    with ThreadPoolExecutor(_scan_workers()) as pool:
        for batch in raw.iter(batch_size=256):
            yield from pool.map(_check_bytes, [_encoded(img) for img in batch["image"]])


def _encoded(img: dict | None) -> bytes | None:
    """The bytes of an undecoded ``datasets.Image`` value (embedded, or a file it points to)."""
    if not img:
        return None
    if img.get("bytes"):
        return img["bytes"]
    try:
        return Path(img["path"]).read_bytes() if img.get("path") else None
    except OSError:
        return None


def hub_dataset_splits(spec: str, labels: list[str] | None = None, catalog: Catalog | None = None) -> DataSplits:
    """A Hub dataset id or a local folder in the Hub layout, through ``datasets.load_dataset``.

    Every image is hashed (sha256 of its encoded bytes) and test-decoded once; a ``sha256`` column (what
    ``data_prep publish`` writes, for images it already decoded) is trusted instead."""
    import datasets

    catalog = catalog or default_catalog()
    dd = datasets.load_dataset(spec)
    per_split: dict[str, tuple] = {}
    for split, ds in dd.items():
        feature = ds.features.get("label")
        if isinstance(feature, datasets.ClassLabel):
            names = [species_name(feature.names[i], catalog) for i in ds["label"]]
        elif "species" in ds.column_names:
            names = [species_name(s, catalog) for s in ds["species"]]
        else:
            raise ValueError(f"{spec}: split {split} has neither a ClassLabel 'label' nor a 'species' column")
        if "sha256" in ds.column_names and all(ds["sha256"]):
            good, hashes = list(range(len(ds))), list(ds["sha256"])
        else:
            where = [f"{spec} {split} row {i}" for i in range(len(ds))]
            good, hashes = scan_images(where, _hub_image_checks(ds), f"{spec} ({split})")
        load = _hf_loader(ds) if len(good) == len(ds) else _Reindexed(_hf_loader(ds), good)
        per_split[split] = (load, [names[i] for i in good], hashes)
    return _labelled(per_split, labels, spec)


def load_splits(
    spec: str, labels: list[str] | None = None, catalog: Catalog | None = None, seed: int = 0
) -> DataSplits:
    """Dispatch on the data spec (see module doc). ``labels``: map onto this label space
    (samples of other species are dropped and counted in ``dropped``)."""
    if spec == "shared-photos":
        return shared_photo_splits(labels, catalog, seed=seed)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "manifest.csv").is_file():
        return manifest_splits(path, labels, catalog or default_catalog())
    if path.is_dir():
        is_hub_layout = (
            (path / "README.md").is_file() or any(path.glob("data/*.parquet")) or any(path.glob("*.parquet"))
        )
        if is_hub_layout:
            return hub_dataset_splits(str(path), labels, catalog)
        return image_folder_splits(path, labels, catalog, seed=seed)
    if path.exists():
        raise ValueError(f"{spec}: expected a folder (Hub layout or image folder), not a file")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return hub_dataset_splits(spec, labels, catalog)
    raise FileNotFoundError(f"{spec}: no such folder, and not a Hub dataset id (org/name) or 'shared-photos'")


def check_data_spec(spec: str) -> None:
    """Fail early, with what to do, when a local data folder does not exist (instead of asking the Hub
    for a path, or a traceback from deep inside the loader)."""
    from mushroom_id.engine.config import PUBLISHED_DATASET, ConfigError

    if spec == "shared-photos" or Path(spec).expanduser().exists():
        return
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return  # a Hub dataset id (org/name)
    how = (
        "`python -m data_prep all --from ../shared/data/photos --licences all` (every photo, for local training; "
        "publish's default keeps open licences only) or the crawl stages, then `python -m data_prep publish`, "
        "write it"
        if Path(spec) == Path(PUBLISHED_DATASET)
        else f"`python -m data_prep publish` writes {PUBLISHED_DATASET}"
    )
    raise ConfigError(
        f"data folder {spec!r} not found: {how}; or pass --data <Hub dataset id | Hub-layout folder | "
        "image folder | shared-photos>"
    )


def class_weights(
    targets: np.ndarray,
    labels: Sequence[str],
    balance: float = 0.0,
    toxic_weight: float = 1.0,
    catalog: Catalog | None = None,
) -> np.ndarray:
    """Per-class loss weights: ``1 / count**balance``, times ``toxic_weight`` for dangerous species,
    normalised to mean 1 over the classes that have training samples (absent classes get 0)."""
    counts = np.bincount(np.asarray(targets), minlength=len(labels)).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0) ** balance, 0.0)
    if toxic_weight != 1.0:
        w = np.where((catalog or default_catalog()).mask(labels), w * toxic_weight, w)
    present = counts > 0
    return w / w[present].mean() if present.any() else w


def cache_key(*parts) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


def remap(splits: DataSplits, labels: list[str]) -> DataSplits:
    """The same samples in another label space (a model's): other species are dropped and counted."""
    if list(labels) == splits.labels:
        return splits
    index = {n: i for i, n in enumerate(labels)}
    new, dropped = {}, {}
    for name, ds in splits.splits.items():
        keep = [i for i, t in enumerate(ds.targets) if splits.labels[t] in index]
        dropped[name] = splits.dropped.get(name, 0) + len(ds) - len(keep)
        sub = ds.subset(keep)
        sub.targets = np.array([index[splits.labels[t]] for t in sub.targets], dtype=np.int64)
        new[name] = sub
    return DataSplits(
        labels=list(labels), splits=new, source=splits.source, dropped=dropped, cross_source=splits.cross_source
    )
