"""The Gradio interface, built from the core package. ``app.py`` only launches it.

API endpoints (see docs/api.md; both classify endpoints return the structured result of
``mushroom_id.serving.predictor``):
  /classify               one image                       -> result dict
  /classify_observation   several photos of one specimen  -> result dict
  /species                search the catalog table        -> rows

The page puts the answer first: headline, warning panel and candidate cards beside the photo on a
desktop, right under it on a phone (which scrolls there). Every new photo, error, tab switch or model
change clears the previous answer. Colours work in light and dark mode (WCAG AA contrast, checked in
the browser tests); fonts are the system's (full glyphs, no download).

Models: the default is ``$MUSHROOM_MODEL`` (or the embedded model); ``$MUSHROOM_EXTRA_MODELS``
(comma-separated specs) adds more to a selector. Every model loads once, when the app starts.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from mushroom_id.core.catalog import DANGEROUS, Catalog, Species, default_catalog
from mushroom_id.core.images import MAX_FILE_BYTES, ImageError
from mushroom_id.core.models import MODEL_ENV, ModelLoadError, load_model, resolve_spec
from mushroom_id.core.paths import REPO_DIR
from mushroom_id.core.safety import DISCLAIMER, EDIBILITY_TEXT, danger_rank
from mushroom_id.serving.flags import FlagStore
from mushroom_id.serving.predictor import Predictor, configure_threads
from mushroom_id.serving.reference_photos import ReferencePhotos, default_reference_photos

log = logging.getLogger(__name__)

EXTRA_MODELS_ENV = "MUSHROOM_EXTRA_MODELS"  # comma-separated specs offered next to the default
EXAMPLES_ENV = "MUSHROOM_EXAMPLES"  # a folder of example photos; "" disables examples
CONCURRENCY_ENV = "MUSHROOM_CONCURRENCY"  # predictions run at the same time (default 2 = CPU cores of a free Space)
MAX_PHOTOS = 8  # photos of one specimen per request
SET_SHOWN = 15  # prediction-set species listed on the page (the JSON has all)
MAX_QUEUE = 32  # requests waiting; more get "queue full" instead of a long wait
MAX_UPLOAD = f"{MAX_FILE_BYTES // (1024 * 1024)}mb"  # the same limit the image loader enforces
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
PHONE_MAX_PX = 768  # below this width the columns stack and the page scrolls to the answer

# Short badges (one or two words); the full EDIBILITY_TEXT is the badge's tooltip.
BADGE_TEXT = {
    "deadly": "DEADLY",
    "poisonous": "POISONOUS",
    "psychoactive": "psychoactive",
    "inedible": "inedible",
    "unknown": "edibility unknown",
    "edible": "edible*",
    "choice": "edible, choice*",
}
EDIBLE_FOOTNOTE = (
    "* Edible according to the sources named in the catalog — and only once someone who knows "
    "mushrooms has identified the specimen in hand, and it is properly cooked. A photo never does that."
)
DANGER_KINDS = {"toxic_candidate", "not_fungus"}
DANGER_SHOWN = 3  # danger items visible at once; the rest fold behind "show all N"
NOTICES_SHOWN = 3  # the same for the other notices

# System fonts: full glyph coverage, nothing downloaded (Gradio's bundled bold font lacks letters).
SYSTEM_FONTS = (
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Roboto",
    "Noto Sans",
    "Helvetica Neue",
    "Arial",
    "Liberation Sans",
    "DejaVu Sans",
    "sans-serif",
)
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace")

# Colours as variables: one set for light, one for dark mode (Gradio puts "dark" on <body>).
# Every text/background pair has a contrast of at least 4.5:1 (tests/test_browser.py measures it).
CSS = """
:root {
  --mid-danger-bg: #fdecea; --mid-danger-fg: #5c0000; --mid-danger-border: #c62828; --mid-danger-title: #8b0000;
  --mid-notice-bg: #fff8e1; --mid-notice-fg: #3d2a00; --mid-notice-border: #b26a00;
  --mid-card-bg: #ffffff; --mid-card-border: #d4d4d8; --mid-muted: #52525b; --mid-text: #18181b;
  --mid-edible: #1b5e20; --mid-inedible: #5d4037; --mid-link: #0b57d0;
  --mid-bar-bg: #e4e4e7; --mid-bar-fill: #c2410c; --mid-error-bg: #fdecea; --mid-error-fg: #5c0000;
}
.dark {
  --mid-danger-bg: #3b0a0a; --mid-danger-fg: #ffe1de; --mid-danger-border: #ff6b6b; --mid-danger-title: #ffb4ab;
  --mid-notice-bg: #2b2200; --mid-notice-fg: #fff1c2; --mid-notice-border: #e0a800;
  --mid-card-bg: #1c1c21; --mid-card-border: #3f3f46; --mid-muted: #b4b4bd; --mid-text: #f4f4f5;
  --mid-edible: #9ee29f; --mid-inedible: #dcc0b2; --mid-link: #8ab4f8;
  --mid-bar-bg: #3f3f46; --mid-bar-fill: #fb923c; --mid-error-bg: #3b0a0a; --mid-error-fg: #ffe1de;
}
#header h1 {font-size: 1.6em; margin: 0 0 2px 0;}
#header p {margin: 0; color: var(--mid-muted);}
#disclaimer {border-left: 6px solid var(--mid-danger-border); padding: 8px 14px; background: var(--mid-danger-bg);
  color: var(--mid-danger-fg); border-radius: 6px; font-size: 0.92em; line-height: 1.4;}
#disclaimer b {color: var(--mid-danger-fg);}
#answer {color: var(--mid-text); min-height: 120px;}
#answer a {color: var(--mid-link); text-decoration: underline;}
#answer .pending, #answer .placeholder {color: var(--mid-muted); padding: 24px 4px; font-size: 1.05em;}
.result-message {font-size: 1.2em; font-weight: 700; margin: 0 0 8px 0; line-height: 1.3;}
.warning-box {border: 3px solid var(--mid-danger-border); background: var(--mid-danger-bg); color: var(--mid-danger-fg);
  padding: 10px 14px; border-radius: 8px; margin-bottom: 8px; line-height: 1.4;}
.warning-box .warning-title {font-weight: 800; color: var(--mid-danger-title); letter-spacing: 0.03em;}
.warning-box ul {margin: 4px 0 0 0; padding-left: 1.2em;}
.warning-box li.danger-deadly {font-weight: 700;}
.danger-summary {font-size: 1.05em; font-weight: 600; margin: 4px 0;}
.warning-box details summary, .notice-box details summary {cursor: pointer; text-decoration: underline;
  margin-top: 4px;}
.notice-box {border: 2px solid var(--mid-notice-border); background: var(--mid-notice-bg); color: var(--mid-notice-fg);
  padding: 8px 14px; border-radius: 8px; margin-bottom: 8px; line-height: 1.4;}
.notice-box ul {margin: 0; padding-left: 1.2em;}
.error-box {border: 3px solid var(--mid-danger-border); background: var(--mid-error-bg); color: var(--mid-error-fg);
  padding: 12px 14px; border-radius: 8px; font-weight: 600;}
.badge {display: inline-block; white-space: nowrap; padding: 1px 8px; border-radius: 999px; font-size: 0.85em;
  font-weight: 700; line-height: 1.45; border: 1.5px solid transparent; vertical-align: baseline;}
.badge-deadly {background: #7f0000; color: #ffffff;}
.badge-poisonous {background: #b71c1c; color: #ffffff;}
.badge-psychoactive {background: #6a1b9a; color: #ffffff;}
.badge-inedible {color: var(--mid-inedible); border-color: currentColor; font-weight: 600;}
.badge-unknown {color: var(--mid-muted); border-color: currentColor; font-weight: 600;}
.badge-edible, .badge-choice {color: var(--mid-edible); border-color: currentColor; font-weight: 600;}
ol.cards {list-style: none; margin: 10px 0 6px 0; padding: 0; display: grid; gap: 8px;}
.card {display: grid; grid-template-columns: 96px minmax(0, 1fr); gap: 12px; padding: 8px;
  border: 1px solid var(--mid-card-border); border-radius: 10px; background: var(--mid-card-bg);}
.card.top {border: 2px solid var(--mid-text);}
.card, .card *, .compare, .compare * {overflow-wrap: normal; word-break: normal; hyphens: manual;}
.card figure, .compare figure {margin: 0;}
.card .ref img, .card .noref {width: 96px; height: 96px; border-radius: 6px; display: block;}
.card .ref img {object-fit: cover;}
.card .noref {display: flex; align-items: center; justify-content: center; text-align: center; font-size: 0.75em;
  color: var(--mid-muted); border: 1px dashed var(--mid-card-border); line-height: 1.25;}
.card figcaption, .compare figcaption .credit {font-size: 0.72em; color: var(--mid-muted); line-height: 1.25;
  margin-top: 3px;}
.card figcaption a, .compare figcaption a {color: var(--mid-muted) !important;}
.card .name {font-weight: 700; font-size: 1.05em;}
.card .rank {color: var(--mid-muted); font-weight: 600; margin-right: 4px;}
.card .common {color: var(--mid-muted);}
.card .line {margin-top: 4px; display: flex; flex-wrap: wrap; align-items: center; gap: 4px 10px;}
.card .prob {font-variant-numeric: tabular-nums; font-weight: 700;}
.bar {display: inline-block; width: 110px; height: 8px; background: var(--mid-bar-bg); border-radius: 4px;
  overflow: hidden;}
.bar > span {display: block; height: 100%; background: var(--mid-bar-fill);}
.card .disagree {margin-top: 4px; font-size: 0.85em;}
.card .looks {margin-top: 4px; font-size: 0.85em; color: var(--mid-muted);}
.card .looks i {color: var(--mid-text);}
.card .looks .nowrap {white-space: nowrap;}
#lookalike-compare h4 {margin: 12px 0 6px 0;}
.compare {display: flex; flex-wrap: wrap; gap: 10px;}
.compare figure {width: 180px;}
.compare img, .compare .noref {width: 180px; height: 180px; object-fit: cover; border-radius: 8px; display: block;}
.compare .noref {display: flex; align-items: center; justify-content: center; border: 1px dashed var(--mid-card-border);
  color: var(--mid-muted); font-size: 0.8em; text-align: center;}
.compare figcaption {font-size: 0.9em; margin-top: 3px;}
#answer .muted, #answer .meta {color: var(--mid-muted); font-size: 0.85em;}
#answer details.pset summary {cursor: pointer;}
#examples-credits {font-size: 0.8em; color: var(--mid-muted);}
#examples-credits a {color: var(--mid-muted);}
#examples .grid-wrap {height: auto !important; max-height: none !important; min-height: 0 !important;}
#examples .caption-label {white-space: normal; overflow: visible; text-overflow: clip; line-height: 1.2;}
@media (max-width: 900px) {#examples .grid-container {--grid-cols: 4 !important;}}
@media (max-width: 480px) {
  #examples .grid-container {--grid-cols: 2 !important;}
  .card {grid-template-columns: 76px minmax(0, 1fr); gap: 10px;}
  .card .ref img, .card .noref {width: 76px; height: 76px;}
  .compare figure {width: 140px;} .compare img, .compare .noref {width: 140px; height: 140px;}
  #header h1 {font-size: 1.3em;}
}
"""

# Gradio scopes the rules of ``css`` inside @media to its content, so the page margins (outside it)
# are set here, unscoped.
HEAD = """<style>
@media (max-width: 480px) {.gradio-container .main.app {padding-left: 10px !important; padding-right: 10px !important;}}
</style>"""

# On phones the columns stack: bring the answer (and its progress) into view when a photo arrives.
SCROLL_TO_ANSWER_JS = f"""() => {{
  if (window.innerWidth >= {PHONE_MAX_PX}) return [];
  const go = () => {{
    const el = document.getElementById('answer-panel');
    if (el) el.scrollIntoView({{block: 'start'}});
  }};
  requestAnimationFrame(() => setTimeout(go, 30));
  return [];
}}"""

ENDPOINT_HELP = """\
**Use it from code** (`pip install gradio_client`):
```python
from gradio_client import Client, handle_file
client = Client("<this Space's id or URL>")
result = client.predict(handle_file("photo.jpg"), api_name="/classify")
print(result["candidates"][0]["species"], result["warnings"])
```
`/classify_observation` takes a list of `handle_file(...)` photos of one specimen. Both return the
JSON shown under "Full result". See "Use via API" at the bottom of the page.
"""

PLACEHOLDER = "Upload a photo to get an answer. It appears here."
PENDING = "Identifying… the answer appears here in a few seconds."


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

    def run(self, paths: list[str], spec: str | None) -> dict:
        predictor = self.predictor(spec)
        if not paths:
            raise gr.Error(
                "No photo received: upload a JPEG, PNG or WebP photo of the mushroom.", print_exception=False
            )
        if len(paths) > MAX_PHOTOS:
            raise gr.Error(f"At most {MAX_PHOTOS} photos of one specimen, got {len(paths)}.", print_exception=False)
        try:
            return predictor.predict_observation(paths)
        except ImageError as e:
            raise gr.Error(str(e), title="Not a usable photo", print_exception=False) from e

    def classify(self, image, model: str | None = None) -> dict:
        """One photo -> the structured result."""
        path = _file_path(image)
        return self.run([path] if path else [], model)

    def classify_observation(self, photos, model: str | None = None) -> dict:
        """Several photos of the same specimen -> one structured result."""
        return self.run([p for p in map(_file_path, photos or []) if p], model)

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
            f"**Model:** `{p.loaded.model_id}` knows **{n}** of the {total} catalog species. "
            "A mushroom outside that list is named as the closest species the model knows, "
            "so check the species list below."
        )
        if n < total:
            text += " This small default model was built from a few test photos per species."
        return text

    def photos_summary(self) -> str:
        if self.refs:
            return (
                f"**Reference photos:** {len(self.refs)} species have one, each shown with its credit and "
                "licence (Wikimedia Commons CC BY / BY-SA / CC0 / public domain, or iNaturalist via GBIF)."
            )
        return f"**Reference photos are not available in this installation** ({self.refs.note})."


# ---------------------------------------------------------------- rendering (pure functions)


def _e(text) -> str:
    return html.escape(str(text if text is not None else ""))


def pct(p: float | None) -> str:
    """Probabilities as the page shows them everywhere (the same rounding as the warning texts)."""
    if p is None:
        return ""
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def badge(status: str) -> str:
    """A short edibility badge; the full catalog wording is its tooltip."""
    status = status if status in BADGE_TEXT else "unknown"
    return (
        f'<span class="badge badge-{status}" data-edibility="{status}" title="{_e(EDIBILITY_TEXT[status])}">'
        f"{_e(BADGE_TEXT[status])}</span>"
    )


def _is_danger(warning: dict) -> bool:
    # Unknown future kinds that name a dangerous species count as dangers; lookalikes stay notices.
    if warning.get("kind") in DANGER_KINDS:
        return True
    return warning.get("kind") != "lookalike" and warning.get("edibility") in DANGEROUS


def _danger_items(warnings: list[dict]) -> str:
    return "".join(f'<li class="danger-{_e(w.get("edibility") or "other")}">{_e(w["message"])}</li>' for w in warnings)


def warnings_html(result: dict) -> str:
    """The answer's message; then the dangers (red): the summary, the deadly first, at most
    DANGER_SHOWN visible and the rest behind "show all N"; then the other notices (yellow)."""
    out = f'<div class="result-message" id="result-message">{_e(result.get("message", ""))}</div>'
    danger = [w for w in result["warnings"] if _is_danger(w)]
    danger.sort(key=lambda w: danger_rank(w.get("edibility")) if w.get("edibility") else -1)  # stable
    # the headline already says "Not confident: ..." word for word: the notes box does not repeat it
    notices = [w for w in result["warnings"] if not _is_danger(w) and w["message"] != result.get("message")]
    if danger:
        summary = result.get("summary") or ""
        box = (
            '<div class="warning-box" id="danger-warnings" role="alert">'
            '<span class="warning-title"><span aria-hidden="true">⚠</span> WARNING</span>'
        )
        if summary:
            box += f'<p class="danger-summary" id="danger-summary">{_e(summary)}</p>'
        box += f"<ul>{_danger_items(danger[:DANGER_SHOWN])}</ul>"
        if len(danger) > DANGER_SHOWN:
            box += (
                f'<details class="more-dangers" id="more-dangers"><summary>show all {len(danger)}</summary>'
                f"<ul>{_danger_items(danger[DANGER_SHOWN:])}</ul></details>"
            )
        out += box + "</div>"
    if notices:
        items = [f"<li>{_e(w['message'])}</li>" for w in notices]
        body = "".join(items[:NOTICES_SHOWN])
        if len(items) > NOTICES_SHOWN:
            body += (
                f'<details id="more-notices"><summary>show all {len(items)} notes</summary>'
                f"<ul>{''.join(items[NOTICES_SHOWN:])}</ul></details>"
            )
        out += f'<div class="notice-box" id="notices"><ul>{body}</ul></div>'
    return out


def _species(catalog: Catalog | None, name: str) -> Species | None:
    if catalog is None or catalog.resolve(name) is None:
        return None
    return catalog.get(name)


def _figure(name: str, refs: ReferencePhotos | None, size_class: str = "") -> str:
    """A reference photo with its credit, or a plain 'no photo' box."""
    photo = refs.get(name) if refs else None
    uri = refs.data_uri(photo) if photo else None
    if not uri:
        return f'<figure class="ref {size_class}"><div class="noref">no reference photo</div></figure>'
    return (
        f'<figure class="ref {size_class}"><img src="{uri}" alt="Reference photo of {_e(name)}" loading="lazy">'
        f"<figcaption>{_credit_link(photo)}</figcaption></figure>"
    )


def _nowrap_licence(text: str) -> str:
    """Keep "CC BY-SA 4.0" on one line: a narrow caption must not break it at its hyphen."""
    source, sep, licence = text.partition(" · ")
    return f'{source}{sep}<span style="white-space: nowrap">{licence}</span>' if sep else text


def _credit_link(photo) -> str:
    return (
        f'<a href="{_e(photo.page)}" target="_blank" rel="noopener" title="{_e(photo.credit_detail)}">'
        f"{_nowrap_licence(_e(photo.credit))}</a>"
    )


def _page_link(sp: Species | None) -> str:
    if sp is None or not sp.url:
        return ""
    site = "Wikipedia" if "wikipedia.org" in sp.url else "Wild Food UK" if "wildfooduk" in sp.url else "species page"
    return f'<a class="species-page" href="{_e(sp.url)}" target="_blank" rel="noopener">{site} ↗</a>'


def sources_line(sp: Species | None) -> str:
    """'Sources disagree — Wikipedia: choice, not recommended · original project's list: edible'."""
    if sp is None or not sp.sources_disagree:
        return ""
    words = " · ".join(f"{_e(src)}: {_e(word)}" for src, word in sp.source_words())
    return f'<div class="disagree"><b>Sources disagree</b> — {words}</div>'


def card_html(rank: int, c: dict, refs: ReferencePhotos | None, catalog: Catalog | None) -> str:
    sp = _species(catalog, c["species"])
    common = c.get("common_name") or (sp.common_name if sp else "")
    common_html = f'<div class="common">{_e(common)}</div>' if common else ""
    looks = c.get("lookalikes") or []
    looks_html = ""
    if looks:
        items = " ".join(
            f'<span class="look"><i>{_e(x["species"])}</i> '
            f'<span class="nowrap">{badge(x["edibility"])}{"," if i < len(looks) - 1 else ""}</span></span>'
            for i, x in enumerate(looks)
        )
        looks_html = f'<div class="looks">Can be confused with: {items}</div>'
    width = max(0.0, min(1.0, float(c["probability"]))) * 100
    return (
        f'<li class="card{" top" if rank == 1 else ""}" data-species="{_e(c["species"])}">'
        f"{_figure(c['species'], refs)}"
        '<div class="card-body">'
        f'<div class="name"><span class="rank">{rank}.</span><i>{_e(c["species"])}</i></div>{common_html}'
        f'<div class="line"><span class="bar" aria-hidden="true"><span style="width:{width:.1f}%"></span></span>'
        f'<span class="prob">{pct(c["probability"])}</span>{badge(c["edibility"])}{_page_link(sp)}</div>'
        f"{sources_line(sp)}{looks_html}</div></li>"
    )


def cards_html(result: dict, refs: ReferencePhotos | None = None, catalog: Catalog | None = None) -> str:
    cands = result.get("candidates") or []
    if not cands:
        return ""
    cards = "".join(card_html(i, c, refs, catalog) for i, c in enumerate(cands, 1))
    return f'<ol class="cards" id="candidates" aria-label="Most likely species">{cards}</ol>'


def compare_html(result: dict, refs: ReferencePhotos | None = None, catalog: Catalog | None = None) -> str:
    """The most likely species beside its dangerous lookalikes, photo next to photo."""
    cands = result.get("candidates") or []
    if not cands or catalog is None or catalog.resolve(cands[0]["species"]) is None:
        return ""
    top = catalog.get(cands[0]["species"])
    dangerous = sorted((s for s in catalog.lookalikes(top.name) if s.dangerous), key=lambda s: danger_rank(s.edibility))
    if not dangerous:
        return ""

    def fig(sp: Species, label: str) -> str:
        photo = refs.get(sp.name) if refs else None
        uri = refs.data_uri(photo) if photo else None
        img = (
            f'<img src="{uri}" alt="Reference photo of {_e(sp.name)}" loading="lazy">'
            if uri
            else '<div class="noref">no reference photo</div>'
        )
        credit = f'<div class="credit">{_credit_link(photo)}</div>' if uri else ""
        return (
            f'<figure data-species="{_e(sp.name)}">{img}<figcaption>{_e(label)} <i>{_e(sp.name)}</i> '
            f"{badge(sp.edibility)}{credit}</figcaption></figure>"
        )

    figures = fig(top, "Most likely:") + "".join(fig(s, "Lookalike:") for s in dangerous)
    return (
        '<section id="lookalike-compare"><h4>Compare: the most likely species and its dangerous lookalikes</h4>'
        f'<div class="compare">{figures}</div></section>'
    )


def details_html(result: dict) -> str:
    """Genus answer, prediction set (folded), confidence and model line."""
    out = ""
    g = result.get("genus_answer")
    if g:
        out += (
            f'<p id="genus-answer">Genus-level answer: <b><i>{_e(g["name"])}</i></b> '
            f"({g['probability']:.0%} of the probability is on this genus)</p>"
        )
    pset = result.get("prediction_set") or {}
    if pset.get("species"):
        shown = pset["species"][:SET_SHOWN]
        names = ", ".join(f"<i>{_e(s)}</i>" for s in shown)
        if len(pset["species"]) > len(shown):
            names += f" and {len(pset['species']) - len(shown)} more (see the JSON)"
        n = len(pset["species"])
        if pset.get("coverage"):
            head = (
                f"Prediction set ({n} species, calibrated to contain the right species "
                f"{pset['coverage']:.0%} of the time on held-out photos)"
            )
        else:
            head = f"Prediction set ({n} species, not calibrated for this model)"
        out += f'<details class="pset" id="prediction-set"><summary>{head}</summary><p>{names}</p></details>'
    if result.get("candidates"):
        model = result.get("model") or {}
        out += (
            f'<p class="meta">{"Confident" if result.get("confident") else "Not confident"}'
            + (f" · fungus score {result['fungus_score']:.2f}" if result.get("fungus_score") is not None else "")
            + f" · {result.get('photos', 1)} photo(s) · model <code>{_e(model.get('id'))}</code>"
            f" ({_e(model.get('num_species'))} species)</p>"
        )
    return out


def answer_html(result: dict | None, refs: ReferencePhotos | None = None, catalog: Catalog | None = None) -> str:
    """The whole answer panel: headline and warnings, candidate cards, lookalike comparison, details."""
    if not result:
        return message_html(PLACEHOLDER, "placeholder")
    catalog = catalog if catalog is not None else default_catalog()
    body = warnings_html(result) + cards_html(result, refs, catalog) + compare_html(result, refs, catalog)
    if any(c.get("edibility") in ("edible", "choice") for c in result.get("candidates") or []):
        body += f'<p class="muted" id="edible-footnote">{_e(EDIBLE_FOOTNOTE)}</p>'
    if result.get("candidates") and refs is not None and not refs:
        body += f'<p class="muted" id="no-reference">Reference photos are not available here ({_e(refs.note)}).</p>'
    body += details_html(result)
    return f'<div id="answer" data-state="answer">{body}</div>'


def message_html(text: str, kind: str = "placeholder") -> str:
    """The answer panel without an answer: placeholder, pending or error (kind)."""
    if kind == "error":
        return (
            '<div id="answer" data-state="error"><div class="error-box" id="answer-error" role="alert">'
            f"{_e(text)}</div></div>"
        )
    return f'<div id="answer" data-state="{_e(kind)}"><div class="{_e(kind)}">{_e(text)}</div></div>'


def render(result: dict | None, refs: ReferencePhotos | None = None, catalog: Catalog | None = None) -> str:
    """The answer panel's HTML for a structured result (None: the placeholder)."""
    return answer_html(result, refs, catalog)


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


def _examples_credits(service: Service) -> str:
    photos = [p for p in service.refs.examples()] if os.environ.get(EXAMPLES_ENV) is None else []
    if not photos or (REPO_DIR / "examples").is_dir():
        return ""
    items = "; ".join(
        f'<a href="{_e(p.page)}" target="_blank" rel="noopener"><i>{_e(p.species)}</i></a> ({_e(p.licence)})'
        for p in photos
    )
    return (
        f'<p id="examples-credits">Example photos from Wikimedia Commons, author and licence on each page: {items}.</p>'
    )


# ---------------------------------------------------------------- layout


def _species_choices(catalog: Catalog) -> list[tuple[str, str]]:
    return [(f"{s.name} — {s.common_name}" if s.common_name else s.name, s.name) for s in catalog]


def build_demo(
    catalog: Catalog | None = None,
    service: Service | None = None,
    flag_store: FlagStore | None = None,
) -> gr.Blocks:
    """The whole UI. Models load here, once (pass ``service`` to reuse loaded ones)."""
    service = service or Service(catalog)
    catalog = service.catalog
    flags = flag_store if flag_store is not None else FlagStore.from_env()
    examples = example_photos(service)
    table_headers = ["species", "common name", "genus", "family", "edibility", "in this model", "sources disagree"]

    def show(result: dict, paths: list[str]):
        return (
            answer_html(result, service.refs, catalog),
            result,
            {"result": result, "paths": paths},
            gr.update(visible=True, open=False),
            "",
        )

    def message(text: str, kind: str = "placeholder"):
        return message_html(text, kind), None, None, gr.update(visible=False), ""

    def pending(payload=None):
        return message(PENDING, "pending") if payload else message(PLACEHOLDER)

    def run_one(image, model):
        """The page's one-photo path: errors show in the answer panel, and a file that is not a
        photo is removed from the input (no broken-image icon)."""
        try:
            path = _file_path(image)
            if not path:
                return *message(PLACEHOLDER), gr.skip()
            return *show(service.classify(image, model), [path]), gr.skip()
        except gr.Error as e:
            return *message(e.message, "error"), gr.update(value=None)

    def run_many(files, model):
        try:
            paths = [p for p in map(_file_path, files or []) if p]
            return show(service.classify_observation(files, model), paths)
        except gr.Error as e:
            return message(e.message, "error")

    def photos_changed(files):
        paths = [p for p in map(_file_path, files or []) if p]
        preview = [p for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES] or None
        if len(paths) > MAX_PHOTOS:
            text = (
                f"You chose {len(paths)} photos; one specimen takes at most {MAX_PHOTOS}. "
                f"Remove {len(paths) - MAX_PHOTOS} to continue."
            )
            return preview, gr.update(interactive=False), *message(text, "error")
        hint = "Press “Identify specimen” when all photos of the specimen are in." if paths else PLACEHOLDER
        return preview, gr.update(interactive=bool(paths)), *message(hint)

    def send_flag(state, species, store_photo, note):
        if not state or not state.get("result"):
            return "There is no answer to report yet."
        species = (species or "").strip()
        if not species:
            return "Name the species you believe it is (pick one from the list, or type a name or “unknown”)."
        resolved = catalog.resolve(species)
        row = flags.add(
            state["result"],
            state["paths"],
            resolved or species,
            in_catalog=resolved is not None,
            store_photo=bool(store_photo),
            note=note or "",
        )
        stored = "with your photo" if row["photo_stored"] else "without your photo"
        return f"Thank you: your report ({row['user_species']}) was saved, {stored}."

    with gr.Blocks(title="Mushroom identifier") as demo:
        gr.HTML(
            '<div id="header"><h1>Mushroom species identifier</h1>'
            "<p>A photo in, the likely species out — with each one's edibility from our catalog and a "
            "warning whenever a poisonous or deadly species is plausible.</p></div>"
        )
        gr.HTML(f'<div id="disclaimer"><b>⚠ Read this first.</b> {_e(DISCLAIMER)}</div>')
        state = gr.State(None)
        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=5, min_width=320, elem_id="input-column"):
                with gr.Tabs():
                    with gr.Tab("One photo", id="one-photo") as tab_one:
                        image = gr.Image(
                            type="filepath",
                            sources=["upload", "clipboard", "webcam"],
                            label="Photo of the mushroom",
                            height=300,
                            elem_id="photo",
                        )
                        classify_btn = gr.Button("Identify", variant="primary", elem_id="identify")
                    with gr.Tab("Several photos", id="observation") as tab_many:
                        photos = gr.File(
                            file_count="multiple",
                            file_types=sorted(IMAGE_SUFFIXES),
                            type="filepath",
                            label=f"Photos of ONE specimen (up to {MAX_PHOTOS}: cap, gills, stem, base)",
                            elem_id="observation-photos",
                        )
                        preview = gr.Gallery(label="Your photos", columns=4, height=160, interactive=False)
                        observe_btn = gr.Button(
                            "Identify specimen", variant="primary", elem_id="identify-specimen", interactive=False
                        )
                model_choice = gr.Dropdown(
                    service.choices(),
                    value=service.default,
                    label="Model",
                    visible=len(service.specs) > 1,
                    interactive=True,
                )
            with gr.Column(scale=7, min_width=320, elem_id="answer-column"):
                answer = gr.HTML(message_html(PLACEHOLDER), elem_id="answer-panel", min_height=120)
                with gr.Accordion(
                    "This answer is wrong? Tell us what it is", open=False, visible=False, elem_id="flag-panel"
                ) as flag_panel:
                    flag_species = gr.Dropdown(
                        _species_choices(catalog),
                        value=None,
                        allow_custom_value=True,
                        filterable=True,
                        label="What species is it, in your opinion? (pick from the list or type a name)",
                        elem_id="flag-species",
                    )
                    flag_photo = gr.Checkbox(
                        value=False,
                        label="Also store my photo with the report (it may be published in a dataset that "
                        "helps improve the model). Without this tick only a fingerprint (hash) of the photo is kept.",
                        elem_id="flag-photo",
                    )
                    flag_note = gr.Textbox(label="Anything else? (optional)", max_lines=3, elem_id="flag-note")
                    flag_btn = gr.Button("Report this answer as wrong", elem_id="flag-send")
                    flag_status = gr.Markdown(elem_id="flag-status")
                with gr.Accordion("Full result (JSON, as the API returns it)", open=False):
                    raw = gr.JSON(label="result")
        if examples:
            example_gallery = gr.Gallery(
                [(path, caption) for path, caption in examples],
                label="Example photos: click one to try it",
                columns=8,
                object_fit="cover",
                buttons=[],
                allow_preview=False,
                interactive=False,
                elem_id="examples",
            )
            credits = _examples_credits(service)
            if credits:
                gr.HTML(credits)
        gr.Markdown(service.model_summary() + "\n\n" + service.photos_summary(), elem_id="model-info")
        with gr.Accordion(f"All {len(catalog)} catalog species and their edibility", open=False):
            with gr.Row():
                search = gr.Textbox(
                    label="Search: scientific or common name, genus, family, edibility",
                    scale=4,
                    elem_id="species-search",
                )
                only_model = gr.Checkbox(label="only species the model knows", value=False, scale=1)
            table = gr.Dataframe(
                headers=table_headers,
                value=service.species(),
                interactive=False,
                max_height=420,
                wrap=True,
                column_widths=["17%", "15%", "10%", "12%", "14%", "8%", "24%"],
                elem_id="species-table",
            )
        gr.Markdown(ENDPOINT_HELP)

        # The API: hidden triggers, so the endpoints return exactly the result (errors as AppError).
        api_one = gr.Button(visible=False)
        api_many = gr.Button(visible=False)
        api = dict(preprocess=False, concurrency_id="model")
        api_one.click(service.classify, [image, model_choice], raw, api_name="classify", **api)
        api_many.click(
            service.classify_observation, [photos, model_choice], raw, api_name="classify_observation", **api
        )

        # The page: clear and show progress where the answer appears, scroll there on phones, answer.
        outputs = [answer, raw, state, flag_panel, flag_status]
        private = dict(api_visibility="private")
        predict = dict(preprocess=False, concurrency_id="model", show_progress="full", show_progress_on=[answer])
        quick = dict(queue=False, show_progress="hidden", **private)

        def chain(trigger, inputs, fn, fn_outputs):
            return (
                trigger(pending, inputs[:1], outputs, preprocess=False, **quick)
                .then(None, None, None, js=SCROLL_TO_ANSWER_JS, **private)
                .then(fn, inputs, fn_outputs, **predict, **private)
            )

        chain(image.input, [image, model_choice], run_one, outputs + [image])
        chain(classify_btn.click, [image, model_choice], run_one, outputs + [image])
        chain(observe_btn.click, [photos, model_choice], run_many, outputs)
        photos.change(photos_changed, photos, [preview, observe_btn, *outputs], preprocess=False, **quick)
        if examples:

            def pick_example(evt: gr.SelectData):
                value = evt.value or {}
                picked = _file_path(value.get("image") if isinstance(value, dict) else None)
                return picked or examples[evt.index][0]

            picked = example_gallery.select(pick_example, None, image, **quick)
            chain(picked.then, [image, model_choice], run_one, outputs + [image])
        for tab in (tab_one, tab_many):
            tab.select(lambda: message(PLACEHOLDER), None, outputs, **quick)
        flag_btn.click(send_flag, [state, flag_species, flag_photo, flag_note], flag_status, **private)

        search_inputs = [search, only_model, model_choice]
        search.change(service.species, search_inputs, table, api_name="species", concurrency_limit=None)
        only_model.change(service.species, search_inputs, table, api_visibility="private", concurrency_limit=None)
        model_choice.change(lambda: message(PLACEHOLDER), None, outputs, **quick)
        model_choice.change(service.species, search_inputs, table, api_visibility="private", concurrency_limit=None)

    # Inference events share one concurrency group: at most N predictions at once (CPU-bound).
    limit = int(os.environ.get(CONCURRENCY_ENV, "2"))
    demo.queue(default_concurrency_limit=limit, max_size=MAX_QUEUE)
    demo.service = service  # for tests and benchmarks
    demo.flag_store = flags
    return demo


def theme() -> gr.themes.Base:
    """Gradio's default theme with system fonts (full glyphs, nothing downloaded)."""
    return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))


def launch_options(**overrides) -> dict:
    """``demo.launch`` arguments: localhost offline, all interfaces on a Space; upload limit; CSS."""
    on_space = bool(os.environ.get("SPACE_ID"))
    options = dict(
        server_name="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_UPLOAD,
        css=CSS,
        head=HEAD,
        theme=theme(),
        footer_links=["api"],
        show_error=False,  # only gr.Error messages (written for users) reach the page and the client
    )
    options.update(overrides)
    return options


def launch(demo: gr.Blocks, **overrides):
    configure_threads()  # $MUSHROOM_THREADS / $MUSHROOM_RUNTIME: process-wide, so set once by the app
    return demo.launch(**launch_options(**overrides))


__all__ = [
    "MODEL_ENV",
    "Service",
    "answer_html",
    "badge",
    "build_demo",
    "launch",
    "launch_options",
    "render",
    "warnings_html",
]
