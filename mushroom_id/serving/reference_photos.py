"""Reference photos of catalog species (shown on the candidate cards) and the app's example photos.

Only photos whose licence allows showing them with attribution are used, and each carries its credit
and a link to the page that names its author and licence:

* ``commons``: Wikimedia Commons files whose licence (in the photos manifest) is CC BY, CC BY-SA,
  CC0 or public domain and whose origin is a Commons file page;
* ``inat``: iNaturalist research-grade photos published through GBIF (the GBIF iNaturalist
  research-grade dataset carries only CC0, CC BY and CC BY-NC media); the credit links the GBIF
  occurrence page, which names the photographer and the licence.

Everything else in ``../shared/data/photos`` (web scrapes, Kaggle sets, the original's examples,
unverified licences) is never shown. Commons photos are preferred over iNaturalist ones.

Where the photos come from, first match wins:

1. ``$MUSHROOM_REFERENCE_PHOTOS``: a folder written by :func:`export` (``""`` turns photos off);
2. ``reference_photos/`` beside ``app.py``: the folder ``python -m mushroom_id.space build`` puts in
   the Space bundle;
3. ``../shared/data/photos``, read in place (a development checkout); thumbnails are made in memory;
4. nothing: the app says that reference photos are not available in this installation.

Nothing from ``../shared`` is ever written into the repository: :func:`export` writes thumbnails
into a folder outside it (the Space bundle, a temporary folder).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.paths import DATA_DIR, REPO_DIR, shared_manifest, shared_photos_dir

PHOTOS_ENV = "MUSHROOM_REFERENCE_PHOTOS"
BUNDLE_DIR = REPO_DIR / "reference_photos"
INDEX = "index.json"
SCORES_CSV = DATA_DIR / "reference_scores.csv"
PER_SPECIES = 3  # reference photos per species shown to compare
# Below this fungus-gate score a photo shows no mushroom one can compare with (a forest scene, a
# microscope slide): looked at, the 33 licence-clean photos under 0.05 are such; never shown.
MIN_CLEAR = 0.05
LARGE_PX = 800  # longest side of the enlarged photo (the lightbox)
THUMB_PX = 200  # longest side of a card thumbnail (shown at ~90 CSS px, sharp on 2x screens)
EXAMPLE_PX = 600  # longest side of an example photo in the Space bundle (the model sees 224 px)
SOURCE_PREFERENCE = ("commons", "inat")
COMMONS_PAGE = "https://commons.wikimedia.org/wiki/File:"
GBIF_OCCURRENCE = re.compile(r"GBIF occurrence (\d+)")

# Example photos: licence-clean photos (Commons, or iNaturalist via GBIF) that the embedded model did
# NOT train on and answers rightly (top-1; tests/test_app.py checks each against the committed model),
# chosen to show each kind of answer: a deadly lookalike in red (velvet shank / funeral bell, honey
# fungus / funeral bell), a poisonous top guess (the false chanterelle), edible-per-sources species with
# and without a red panel. Only 23 of the 232 held-out licence-clean photos are answered rightly.
EXAMPLE_PHOTOS = (
    ("Flammulina velutipes", "commons_b139da252b.jpg"),
    ("Cantharellus cibarius", "inat_4919416629_0.jpg"),
    ("Hygrophoropsis aurantiaca", "commons_20842271ec.jpg"),
    ("Armillaria mellea", "commons_5e12a39c10.jpg"),
    ("Craterellus cornucopioides", "inat_4921586750_0.jpg"),
    ("Boletus edulis", "inat_4919526738_0.jpg"),
    ("Macrolepiota procera", "inat_4921477940_0.jpg"),
    ("Pleurotus ostreatus", "commons_2815866fe5.jpg"),
)
EXAMPLE_SPECIES = tuple(species for species, _ in EXAMPLE_PHOTOS)


@dataclass(frozen=True)
class Photo:
    species: str  # accepted catalog name
    path: str  # the image file (read in place, or a thumbnail in an exported folder)
    source: str  # "commons" or "inat"
    licence: str  # "CC BY-SA 4.0", "CC0", "public domain"; "" when stated on the linked page only
    page: str  # where the author and the licence are stated
    sha256: str = ""  # of the original file: a user's own upload is never shown back as a reference

    @property
    def credit(self) -> str:
        """One line: who published it and under what licence."""
        if self.source == "commons":
            return f"Wikimedia Commons · {self.licence}"
        return "iNaturalist via GBIF"

    @property
    def credit_detail(self) -> str:
        """What the linked page holds (a tooltip)."""
        if self.source == "commons":
            return f"Licence {self.licence}; author and file history on the Wikimedia Commons page"
        return "Licence (CC0, CC BY or CC BY-NC) and photographer on the GBIF occurrence page"


def commons_licence(raw: str) -> str | None:
    """A short licence name for a Commons licence that allows showing the photo with credit
    (CC BY, CC BY-SA, CC0, public domain); None for anything else (NC, ND, unknown)."""
    text = " ".join((raw or "").split())
    low = text.lower()
    if not low or "noncommercial" in low or "non-commercial" in low or "noderiv" in low or "no deriv" in low:
        return None
    if low == "public domain":
        return "public domain"
    if "cc0" in low or "zero" in low:
        return "CC0"
    version = re.search(r"(\d\.\d)", text)
    if "creative commons attribution" not in low or not version:
        return None
    kind = "CC BY-SA" if re.search(r"share ?alike", low) else "CC BY"
    return f"{kind} {version.group(1)}"


def photo_from_manifest(row: dict, catalog: Catalog, photos_root: Path) -> Photo | None:
    """The manifest row as a showable Photo, or None when its licence or species does not allow it."""
    species = catalog.resolve(row.get("species", ""))
    if species is None:
        return None
    path = str(photos_root / row["path"])
    source, origin = row.get("source", ""), (row.get("origin") or "").strip()
    if source == "commons":
        licence = commons_licence(row.get("license", ""))
        if licence is None or not origin.startswith(COMMONS_PAGE):
            return None
        return Photo(species, path, "commons", licence, origin, row.get("sha256", ""))
    if source == "inat":
        match = GBIF_OCCURRENCE.search(origin)
        if not match:
            return None
        return Photo(
            species, path, "inat", "", f"https://www.gbif.org/occurrence/{match.group(1)}", row.get("sha256", "")
        )
    return None


class ReferencePhotos:
    """Up to ``PER_SPECIES`` reference photos per catalog species, where a licence allows it; the first
    is the clearest (the highest fungus-gate score in ``reference_scores.csv``: the mushroom fills the
    frame), then Commons before iNaturalist; photos under ``MIN_CLEAR`` (no mushroom to compare with: a
    forest scene, a microscope slide) are never shown."""

    def __init__(
        self,
        photos: Iterable[Photo] = (),
        origin: str = "none",
        note: str = "",
        scores: dict[str, float] | None = None,
        ordered: bool = False,
    ):
        """``scores``: {sha256: clearness} (default: the committed file); ``ordered``: keep the given order."""
        self.all_by_species: dict[str, list[Photo]] = {}
        self.by_species: dict[str, Photo] = {}
        rank = {s: i for i, s in enumerate(SOURCE_PREFERENCE)}
        scores = load_scores() if scores is None else scores
        if not ordered:
            photos = [p for p in photos if scores.get(p.sha256, 1.0) >= MIN_CLEAR]
            photos = sorted(photos, key=lambda p: (-scores.get(p.sha256, 0.0), rank.get(p.source, 99), p.path))
        for photo in photos:
            self.by_species.setdefault(photo.species, photo)
            self.all_by_species.setdefault(photo.species, []).append(photo)
        self.origin = origin  # "shared", "folder" or "none"
        self.note = note  # why there are none, or where they come from
        self._examples: list[Photo] = []
        self._lock = threading.Lock()
        self._uris: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.by_species)

    def __bool__(self) -> bool:
        return bool(self.by_species)

    def get(self, species: str, exclude: str | None = None) -> Photo | None:
        """The first reference photo of ``species``; ``exclude``: a sha256 never to show (the user's photo)."""
        found = self.photos(species, exclude, 1)
        return found[0] if found else None

    def photos(self, species: str, exclude: str | None = None, limit: int = PER_SPECIES) -> list[Photo]:
        """Up to ``limit`` photos of ``species``, the clearest first, never the one with sha256 ``exclude``."""
        found = [p for p in self.all_by_species.get(species, []) if not exclude or p.sha256 != exclude]
        return found[:limit]

    def examples(self) -> list[Photo]:
        """The example photos (full size, for the model), in EXAMPLE_PHOTOS order."""
        return list(self._examples)

    def data_uri(self, photo: Photo, size: int = THUMB_PX) -> str | None:
        """The photo as a JPEG ``data:`` URI no larger than ``size`` px (made once, kept in memory);
        None if unreadable."""
        key = f"{size}:{photo.path}"
        with self._lock:
            if key in self._uris:
                return self._uris[key]
        try:
            data = thumbnail_bytes(photo.path, size=size)
        except OSError:
            return None
        uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        with self._lock:
            self._uris[key] = uri
        return uri

    # ---------------------------------------------------------------- sources

    @classmethod
    def from_manifest(cls, photos_dir: Path, catalog: Catalog | None = None) -> ReferencePhotos:
        """From ``../shared/data/photos/manifest.csv``, read in place."""
        catalog = catalog or default_catalog()
        photos_dir = Path(photos_dir)
        rows = shared_manifest(photos_dir)
        photos = [p for p in (photo_from_manifest(r, catalog, photos_dir.parent) for r in rows) if p]
        photos = [p for p in photos if Path(p.path).is_file()]
        refs = cls(photos, origin="shared", note=f"read in place from {photos_dir}")
        by_file = {(p.species, Path(p.path).name): p for p in photos}
        refs._examples = [by_file[key] for key in EXAMPLE_PHOTOS if key in by_file]
        return refs

    @classmethod
    def from_folder(cls, folder: Path) -> ReferencePhotos:
        """From a folder written by :func:`export` (its ``index.json`` lists every photo)."""
        folder = Path(folder)
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))

        def load(entries: list[dict]) -> list[Photo]:
            return [Photo(**{**e, "path": str(folder / e["path"])}) for e in entries]

        # index.json lists each species' photos in the order export() chose (the clearest first)
        refs = cls(load(index.get("photos", [])), origin="folder", note=f"from {folder}", ordered=True)
        refs._examples = load(index.get("examples", []))
        return refs

    @classmethod
    def none(cls, why: str) -> ReferencePhotos:
        return cls((), origin="none", note=why)


def load_scores(path: Path | None = None) -> dict[str, float]:
    """``{sha256: fungus-gate score}`` of the licence-clean photos (:func:`write_scores` made it)."""
    import csv

    path = Path(path or SCORES_CSV)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["sha256"]: float(r["fungus_score"]) for r in csv.DictReader(f)}


def write_scores(refs: ReferencePhotos, predictor, path: Path | None = None) -> Path:
    """Score every reference photo with the served fungus gate (how much of the photo reads as a mushroom)
    and write ``reference_scores.csv``: the clearest photo of a species is shown first."""
    import csv

    photos = [p for ps in refs.all_by_species.values() for p in ps if p.sha256]
    rows = []
    for i in range(0, len(photos), 32):
        chunk = photos[i : i + 32]
        _, fungus = predictor.log_probs([p.path for p in chunk])
        rows += [(p.sha256, f"{float(s):.4f}") for p, s in zip(chunk, fungus, strict=True)]
    path = Path(path or SCORES_CSV)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sha256", "fungus_score"])
        w.writerows(sorted(rows))
    return path


def confusion_photo_coverage(refs: ReferencePhotos, catalog: Catalog) -> tuple[list[tuple], list[tuple]]:
    """Which curated confusions (rows of ``confusions.csv``) the comparison panel can show photo beside
    photo: ``(covered, missing)``, each a list of ``(dangerous, confused_with, sides without a photo)``.
    A genus row is covered when the dangerous species and at least one species of the genus have one."""
    from mushroom_id.core.catalog import read_confusion_rows

    covered, missing = [], []
    for row in read_confusion_rows():
        dangerous, other = catalog.resolve(row["dangerous"]), row["confused_with"]
        others = [sp.name for sp in catalog.species_in_genus(other)] if " " not in other else [catalog.resolve(other)]
        lacking = [name for name in (dangerous,) if refs.get(name) is None]
        if not any(refs.get(n) is not None for n in others):
            lacking.append(other)
        (missing if lacking else covered).append((row["dangerous"], other, lacking))
    return covered, missing


def thumbnail_bytes(path: str | Path, size: int = THUMB_PX, quality: int = 80) -> bytes:
    """A JPEG no larger than ``size`` px on its longest side (EXIF orientation applied)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
        return out.getvalue()


def load_reference_photos(catalog: Catalog | None = None) -> ReferencePhotos:
    """The reference photos this installation can show (see the module docstring for the order)."""
    env = os.environ.get(PHOTOS_ENV)
    if env is not None:
        if not env:
            return ReferencePhotos.none(f"turned off (${PHOTOS_ENV} is empty)")
        folder = Path(env)
        if (folder / INDEX).is_file():
            return ReferencePhotos.from_folder(folder)
        return ReferencePhotos.none(f"${PHOTOS_ENV}={env} has no {INDEX}")
    if (BUNDLE_DIR / INDEX).is_file():
        return ReferencePhotos.from_folder(BUNDLE_DIR)
    photos_dir = shared_photos_dir()
    if (photos_dir / "manifest.csv").is_file():
        return ReferencePhotos.from_manifest(photos_dir, catalog)
    return ReferencePhotos.none(f"no photos folder: neither {BUNDLE_DIR.name}/ beside app.py nor {photos_dir} exists")


@functools.lru_cache(maxsize=1)
def default_reference_photos() -> ReferencePhotos:
    return load_reference_photos()


def export(refs: ReferencePhotos, out_dir: str | Path, species: Iterable[str] | None = None) -> dict:
    """Write thumbnails (and full-size example photos) with an ``index.json`` of their credits into
    ``out_dir`` (a Space bundle's ``reference_photos/``). Returns ``{"photos": n, "examples": m}``."""
    out = Path(out_dir)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    wanted = set(species) if species is not None else set(refs.by_species)

    def slug(name: str) -> str:
        return name.replace(" ", "_")

    photos = []
    for name in sorted(wanted):
        for i, photo in enumerate(refs.photos(name)):  # the clearest first; the order is kept in index.json
            rel = f"photos/{slug(name)}{f'_{i + 1}' if i else ''}.jpg"
            (out / rel).write_bytes(thumbnail_bytes(photo.path, size=LARGE_PX))
            photos.append({**asdict(photo), "path": rel})
    examples = []
    for photo in refs.examples():
        rel = f"examples/{slug(photo.species)}.jpg"
        (out / rel).write_bytes(thumbnail_bytes(photo.path, size=EXAMPLE_PX, quality=88))
        examples.append({**asdict(photo), "path": rel})
    index = {
        "about": (
            "Reference and example photos with their credits; written by mushroom_id.serving.reference_photos.export"
        ),
        "photos": photos,
        "examples": examples,
    }
    (out / INDEX).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"photos": len(photos), "examples": len(examples)}
