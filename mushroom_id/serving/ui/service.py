"""What the page and the API call: the models (loaded once), the catalog, the example photos.

No layout and no HTML here (``layout``, ``render``, ``events``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.images import MAX_FILE_BYTES, ImageError
from mushroom_id.core.models import ModelLoadError, load_model, resolve_spec
from mushroom_id.core.paths import REPO_DIR
from mushroom_id.core.questions import parse_answers
from mushroom_id.core.safety import EDIBILITY_TEXT
from mushroom_id.serving.predictor import Predictor
from mushroom_id.serving.reference_photos import ReferencePhotos, default_reference_photos
from mushroom_id.serving.ui.render import _e, _species

log = logging.getLogger(__name__)

EXTRA_MODELS_ENV = "MUSHROOM_EXTRA_MODELS"  # comma-separated specs offered next to the default
EXAMPLES_ENV = "MUSHROOM_EXAMPLES"  # a folder of example photos; "" disables examples
MAX_PHOTOS = 8  # photos of one specimen per request
# A spore print takes a few hours: the page keeps a photo's probabilities this long after its last use,
# also when Gradio has dropped the page's session (a phone that slept; Gradio keeps a closed session's
# state one hour). The page holds only a random key; the server at most KEEP_MAX photos (a few kB each).
KEEP_SECONDS = 24 * 3600
KEEP_MAX = 5000


class KeptPhotos:
    """Photo probabilities by a random key, for ``KEEP_SECONDS`` after the last use (the oldest go first
    beyond ``KEEP_MAX``); in memory, so a restart of the app forgets them."""

    def __init__(self, seconds: float = KEEP_SECONDS, limit: int = KEEP_MAX):
        self.seconds, self.limit = seconds, limit
        self._items: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, cache: dict) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._items[key] = (time.monotonic(), cache)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return key

    def get(self, key: str | None) -> dict | None:
        """The kept probabilities (and their time renewed), or None when unknown or older than ``seconds``."""
        with self._lock:
            item = self._items.get(key or "")
            if item is None:
                return None
            if time.monotonic() - item[0] > self.seconds:
                del self._items[key]
                return None
            self._items[key] = (time.monotonic(), item[1])
            self._items.move_to_end(key)
            return item[1]


MAX_UPLOAD = f"{MAX_FILE_BYTES // (1024 * 1024)}mb"  # the same limit the image loader enforces
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


# ---------------------------------------------------------------- models and prediction


def model_specs() -> list[str]:
    """The default spec first, then the extra ones, without duplicates."""
    specs = [resolve_spec(None)]
    specs += [s.strip() for s in os.environ.get(EXTRA_MODELS_ENV, "").split(",") if s.strip()]
    return list(dict.fromkeys(specs))


def _file_path(payload) -> str | None:
    """The local path of an uploaded file (the event runs with ``preprocess=False``).

    Gradio has already checked that the path lies in its upload cache. Skipping Gradio's own
    image preprocessing lets a non-image reach our loader, which answers with a clear message.
    """
    if payload is None:
        return None
    if isinstance(payload, str | Path):
        return str(payload)
    if isinstance(payload, dict):
        if payload.get("path"):
            return str(payload["path"])
        if payload.get("image"):  # a gallery item
            return _file_path(payload["image"])
    raise gr.Error(
        "The upload could not be read: send the photo as a file (gradio_client.handle_file).",
        print_exception=False,
    )


def _answers(answers) -> dict | None:
    if answers in (None, "", {}):
        return None
    if isinstance(answers, str):
        try:
            answers = json.loads(answers)
        except json.JSONDecodeError:
            answers = None
    if not isinstance(answers, dict):
        raise gr.Error(
            'Answers must be a JSON object of question -> answer, e.g. {"stipe": "ring", "spore_print": "white"}.',
            print_exception=False,
        )
    return {str(k): str(v) for k, v in answers.items()}


class Service:
    """Models (loaded once), the catalog, and the functions the endpoints call. No layout here."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        specs: Sequence[str] | None = None,
        reference_photos: ReferencePhotos | None = None,
    ):
        self.catalog = catalog or default_catalog()
        specs = list(specs or model_specs())
        self.predictors: dict[str, Predictor] = {}
        self.failed: dict[str, str] = {}
        for i, spec in enumerate(specs):
            try:
                self.predictors[spec] = Predictor(load_model(spec), catalog=self.catalog)
            except ModelLoadError as e:
                if i == 0:  # without its default model the app has nothing to serve
                    raise
                log.warning("model %s not offered: %s", spec, e)
                self.failed[spec] = str(e)
        self.default = specs[0]
        self.kept = KeptPhotos()
        self.refs = reference_photos if reference_photos is not None else default_reference_photos()

    @property
    def specs(self) -> list[str]:
        return list(self.predictors)

    def predictor(self, spec: str | None) -> Predictor:
        spec = spec or self.default
        if spec not in self.predictors:
            raise gr.Error(f"Unknown model {spec!r}; this app offers: {', '.join(self.specs)}.", print_exception=False)
        return self.predictors[spec]

    def choices(self) -> list[tuple[str, str]]:
        return [(f"{p.loaded.model_id} ({p.loaded.num_classes} species)", s) for s, p in self.predictors.items()]

    def observe(self, paths: list[str], spec: str | None, answers: dict | None = None) -> tuple[dict, dict]:
        """(the result, the photo probabilities to cache): the network runs here, once per photo set;
        answers to the field questions then re-rank the cached probabilities (:meth:`refine`)."""
        predictor = self.predictor(spec)
        if not paths:
            raise gr.Error(
                "No photo received: upload a JPEG, PNG or WebP photo of the mushroom.", print_exception=False
            )
        if len(paths) > MAX_PHOTOS:
            raise gr.Error(f"At most {MAX_PHOTOS} photos of one specimen, got {len(paths)}.", print_exception=False)
        self.check_answers(answers)  # before the network runs
        try:
            probs, fungus = predictor.photo_probs(paths)
        except ImageError as e:
            raise gr.Error(str(e), title="Not a usable photo", print_exception=False) from e
        cache = {"probs": probs, "fungus": fungus, "photos": len(paths), "spec": spec or self.default}
        return self.refine(cache, answers), cache

    @staticmethod
    def check_answers(answers: dict | None) -> dict[str, str]:
        try:
            return parse_answers(answers)
        except ValueError as e:
            raise gr.Error(str(e), title="Unknown answer", print_exception=False) from e

    def refine(self, cache: dict | None, answers: dict | None = None) -> dict:
        """The answer for cached photo probabilities and the field answers given (no network)."""
        if not cache:
            raise gr.Error(
                "No photo to refine yet: call /classify (or /classify_observation) first.", print_exception=False
            )
        predictor = self.predictor(cache["spec"])
        self.check_answers(answers)  # an unknown answer is an AppError that lists the accepted ones
        # as given: the predictor drops "not sure" answers as evidence and skips their questions
        return predictor.refine(cache["probs"], cache["fungus"], answers, photos=cache["photos"])

    def run(self, paths: list[str], spec: str | None, answers: dict | None = None) -> dict:
        return self.observe(paths, spec, answers)[0]

    def reference_files(self) -> list[str]:
        """Every reference photo file the page may show (and only those: Gradio's allowed paths)."""
        return [p.path for photos in self.refs.all_by_species.values() for p in photos]

    def classify(self, image, model: str | None = None, answers: dict | None = None) -> dict:
        """One photo (and optional field answers, e.g. ``{"stipe": "ring"}``) -> the structured result."""
        path = _file_path(image)
        return self.run([path] if path else [], model, _answers(answers))

    def classify_observation(self, photos, model: str | None = None, answers: dict | None = None) -> dict:
        """Several photos of the same specimen (and optional field answers) -> one structured result."""
        return self.run([p for p in map(_file_path, photos or []) if p], model, _answers(answers))

    def species(self, query: str = "", only_model: bool = False, model: str | None = None) -> list[list[str]]:
        """Catalog rows (species, common name, genus, family, edibility, in model, sources disagree)
        matching ``query``; the last column holds each source's word when they disagree, else ""."""
        known = set(self.predictor(model).labels)
        q = (query or "").strip().lower()
        rows = []
        for s in self.catalog:
            row = [
                s.name,
                s.common_name,
                s.genus,
                s.family,
                EDIBILITY_TEXT[s.edibility],
                "yes" if s.name in known else "no",
                "; ".join(f"{src}: {word}" for src, word in s.source_words()) if s.sources_disagree else "",
            ]
            if only_model and s.name not in known:
                continue
            if q and not any(q in cell.lower() for cell in row + [s.edibility, *s.synonyms]):
                continue
            rows.append(row)
        return rows

    def model_summary(self, spec: str | None = None) -> str:
        p = self.predictor(spec)
        n, total = p.loaded.num_classes, len(self.catalog)
        text = (
            f"**What it knows:** {n} of the {total} species in our catalog (model `{p.loaded.model_id}`). "
            "A mushroom outside that list is named as the closest species the model knows: "
            "check the species list below."
        )
        if n < total:
            text += " This small default model was built from a few photos per species, so it is often unsure."
        return text

    def photos_summary(self) -> str:
        if self.refs:
            return (
                f"**Reference photos:** {len(self.refs)} species have one, each shown with its credit and "
                "licence (Wikimedia Commons CC BY / BY-SA / CC0 / public domain, or iNaturalist via GBIF)."
            )
        return f"**Reference photos are not available in this installation** ({self.refs.note})."


# ---------------------------------------------------------------- examples


def example_photos(service: Service | None = None, limit: int = 12) -> list[tuple[str, str]]:
    """``[(path, caption), ...]``: ``$MUSHROOM_EXAMPLES`` (a folder; "" disables examples), else
    ``examples/`` beside app.py (photos you hold the rights to), else the licence-clean example photos
    of the reference set (Wikimedia Commons, with credit)."""
    env = os.environ.get(EXAMPLES_ENV)
    folders = ([Path(env)] if env else []) if env is not None else [REPO_DIR / "examples"]
    for folder in folders:
        if folder.is_dir():
            captions = {}
            if (folder / "captions.json").is_file():
                captions = json.loads((folder / "captions.json").read_text(encoding="utf-8"))
            photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
            return [(str(p), captions.get(p.name) or p.stem.replace("_", " ")) for p in photos]
    if env is not None:
        return []
    refs = service.refs if service is not None else default_reference_photos()
    catalog = service.catalog if service is not None else default_catalog()
    out = []
    for photo in refs.examples()[:limit]:
        sp = _species(catalog, photo.species)
        name = f"{sp.common_name} ({photo.species})" if sp and sp.common_name else photo.species
        out.append((photo.path, name))
    return out


def examples_credits(service: Service) -> str:
    photos = [p for p in service.refs.examples()] if os.environ.get(EXAMPLES_ENV) is None else []
    if not photos or (REPO_DIR / "examples").is_dir():
        return ""
    items = "; ".join(
        f'<a href="{_e(p.page)}" target="_blank" rel="noopener"><i>{_e(p.species)}</i></a> ({_e(p.credit)})'
        for p in photos
    )
    return (
        '<p id="examples-credits">Example photos (the model did not train on them and names each rightly; '
        f"author and licence on each page): {items}.</p>"
    )


def upload_sha256(path: str | None) -> str:
    """The sha256 of an uploaded file ("" when unreadable): its own photo is never shown back to a user."""
    if not path:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""
