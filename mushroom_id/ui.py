"""The Gradio interface, built from the core package. ``app.py`` only launches it.

API endpoints (see docs/api.md; both classify endpoints return the structured result of
``mushroom_id.predict``):
  /classify               one image                       -> result dict
  /classify_observation   several photos of one specimen  -> result dict
  /species                search the catalog table        -> rows

Models: the default is ``$MUSHROOM_MODEL`` (or the embedded model); ``$MUSHROOM_EXTRA_MODELS``
(comma-separated specs) adds more to a selector. Every model loads once, when the app starts.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from .catalog import DANGEROUS, Catalog, default_catalog
from .images import MAX_FILE_BYTES, ImageError
from .models import MODEL_ENV, ModelLoadError, load_model, resolve_spec
from .paths import REPO_DIR, shared_photos_dir
from .predict import Predictor
from .safety import DISCLAIMER, EDIBILITY_TEXT, danger_rank

log = logging.getLogger(__name__)

EXTRA_MODELS_ENV = "MUSHROOM_EXTRA_MODELS"  # comma-separated specs offered next to the default
EXAMPLES_ENV = "MUSHROOM_EXAMPLES"  # a folder of example photos; "" disables examples
CONCURRENCY_ENV = "MUSHROOM_CONCURRENCY"  # predictions run at the same time (default 2 = CPU cores of a free Space)
MAX_PHOTOS = 8  # photos of one specimen per request
SET_SHOWN = 15  # prediction-set species listed on the page (the JSON has all)
MAX_QUEUE = 32  # requests waiting; more get "queue full" instead of a long wait
MAX_UPLOAD = f"{MAX_FILE_BYTES // (1024 * 1024)}mb"  # the same limit the image loader enforces
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}

BADGE_COLOURS = {
    "deadly": "#7f0000",
    "poisonous": "#c62828",
    "psychoactive": "#6a1b9a",
    "inedible": "#5d4037",
    "unknown": "#546e7a",
    "edible": "#2e7d32",
    "choice": "#1b5e20",
}
DANGER_KINDS = {"toxic_candidate", "not_fungus"}

CSS = """
#disclaimer {border-left: 6px solid #c62828; padding: 8px 14px; background: #fff3f3; color: #3b0000;
  border-radius: 4px; font-size: 0.95em;}
.warning-box {border: 3px solid #c62828; background: #ffebee; color: #7f0000; padding: 10px 14px;
  border-radius: 8px; font-weight: 600; margin-bottom: 8px;}
.notice-box {border: 2px solid #f9a825; background: #fffde7; color: #4e342e; padding: 10px 14px;
  border-radius: 8px; margin-bottom: 8px;}
.result-message {font-size: 1.1em; font-weight: 600; margin: 4px 0 8px 0;}
.danger-summary {font-size: 1.05em; margin: 6px 0;}
.warning-box li.danger-deadly {font-weight: 800;}
.warning-box details summary {cursor: pointer; text-decoration: underline;}
.badge {color: #fff; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600;
  display: inline-block; line-height: 1.35; margin: 1px 0;}
.candidates-wrap {overflow-x: auto;}
table.candidates {width: 100%; border-collapse: collapse; table-layout: fixed;}
table.candidates td, table.candidates th {padding: 4px 6px; border-bottom: 1px solid #ddd; text-align: left;
  vertical-align: top; overflow-wrap: anywhere;}
table.candidates col.rank {width: 2.2em;} table.candidates col.prob {width: 7.5em;}
table.candidates col.edib {width: 24%;} table.candidates col.species {width: 24%;}
"""

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

    def __init__(self, catalog: Catalog | None = None, specs: Sequence[str] | None = None):
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
        """Catalog rows (species, common name, genus, family, edibility, in model) matching ``query``."""
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


# ---------------------------------------------------------------- rendering (pure functions)


def badge(status: str) -> str:
    colour = BADGE_COLOURS.get(status, BADGE_COLOURS["unknown"])
    text = EDIBILITY_TEXT.get(status, EDIBILITY_TEXT["unknown"])
    return (
        f'<span class="badge badge-{html.escape(status)}" data-edibility="{html.escape(status)}" '
        f'style="background:{colour}">{html.escape(text)}</span>'
    )


def _is_danger(warning: dict) -> bool:
    # Unknown future kinds that name a dangerous species count as dangers; lookalikes stay notices.
    if warning.get("kind") in DANGER_KINDS:
        return True
    return warning.get("kind") != "lookalike" and warning.get("edibility") in DANGEROUS


DANGER_SHOWN = 3  # danger items visible at once; the rest fold behind "show all N"


def _danger_items(warnings: list[dict]) -> str:
    return "".join(
        f'<li class="danger-{html.escape(str(w.get("edibility") or "other"))}">{html.escape(w["message"])}</li>'
        for w in warnings
    )


def warnings_html(result: dict) -> str:
    """The answer's message; then the dangers (red): the summary, the deadly first, at most
    DANGER_SHOWN visible and the rest behind "show all N"; then the other notices (yellow)."""
    out = f'<div class="result-message" id="result-message">{html.escape(result.get("message", ""))}</div>'
    danger = [w for w in result["warnings"] if _is_danger(w)]
    danger.sort(key=lambda w: danger_rank(w.get("edibility")) if w.get("edibility") else -1)  # stable
    notices = [w for w in result["warnings"] if not _is_danger(w)]
    if danger:
        summary = result.get("summary") or ""
        box = '<div class="warning-box" id="danger-warnings">⚠ WARNING'
        if summary:
            box += f'<p class="danger-summary" id="danger-summary">{html.escape(summary)}</p>'
        box += f"<ul>{_danger_items(danger[:DANGER_SHOWN])}</ul>"
        if len(danger) > DANGER_SHOWN:
            box += (
                f'<details class="more-dangers" id="more-dangers"><summary>show all {len(danger)}</summary>'
                f"<ul>{_danger_items(danger[DANGER_SHOWN:])}</ul></details>"
            )
        out += box + "</div>"
    if notices:
        items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in notices)
        out += f'<div class="notice-box" id="notices"><ul>{items}</ul></div>'
    return out


def candidates_html(result: dict) -> str:
    """Top-k table with an edibility badge per candidate, the prediction set, the genus answer."""
    rows = []
    for rank, c in enumerate(result["candidates"], 1):
        common = f"<br><small>{html.escape(c['common_name'])}</small>" if c.get("common_name") else ""
        looks = "<br>".join(f"<i>{html.escape(x['species'])}</i> {badge(x['edibility'])}" for x in c["lookalikes"])
        rows.append(
            f"<tr><td>{rank}</td><td><i>{html.escape(c['species'])}</i>{common}</td>"
            f"<td>{c['probability']:.1%}</td><td>{badge(c['edibility'])}</td><td>{looks}</td></tr>"
        )
    out = ""
    if rows:
        out += (
            '<div class="candidates-wrap"><table class="candidates" id="candidates">'
            '<colgroup><col class="rank"><col class="species"><col class="prob"><col class="edib"><col></colgroup>'
            "<thead><tr><th>#</th><th>Species</th>"
            "<th>Probability</th><th>Edibility (catalog)</th><th>Can be confused with</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    g = result.get("genus_answer")
    if g:
        out += (
            f'<p id="genus-answer">Genus-level answer: <b><i>{html.escape(g["name"])}</i></b> '
            f"({g['probability']:.0%} of the probability is on this genus)</p>"
        )
    pset = result.get("prediction_set") or {}
    if pset.get("species"):
        shown = pset["species"][:SET_SHOWN]
        names = ", ".join(f"<i>{html.escape(s)}</i>" for s in shown)
        if len(pset["species"]) > len(shown):
            names += f" and {len(pset['species']) - len(shown)} more (see the JSON)"
        if pset.get("coverage"):
            out += (
                f'<p id="prediction-set">Prediction set ({len(pset["species"])} species, calibrated to '
                f"contain the right species {pset['coverage']:.0%} of the time on held-out photos): "
                f"{names}</p>"
            )
        else:
            out += f'<p id="prediction-set">Prediction set (not calibrated for this model): {names}</p>'
    if result.get("candidates"):
        out += f"<p><small>{'Confident' if result.get('confident') else 'Not confident'}"
        if result.get("fungus_score") is not None:
            out += f" · fungus score {result['fungus_score']:.2f}"
        model = result.get("model") or {}
        out += (
            f" · {result.get('photos', 1)} photo(s) · model <code>{html.escape(str(model.get('id')))}</code>"
            f" ({model.get('num_species')} species)</small></p>"
        )
    return out


def render(result: dict | None) -> tuple[dict | None, str, str]:
    """(gr.Label value, warnings HTML, candidates HTML) for a structured result (None clears)."""
    if not result:
        return None, "", ""
    labels = {c["species"]: c["probability"] for c in result["candidates"]} or None
    return labels, warnings_html(result), candidates_html(result)


# ---------------------------------------------------------------- layout


def _previewable(files: list[str] | None) -> list[str] | None:
    return [f for f in files or [] if Path(f).suffix.lower() in IMAGE_SUFFIXES] or None


def example_photos(limit: int = 12) -> list[str]:
    """Example photos, only where their folder exists: ``$MUSHROOM_EXAMPLES``, else ``examples/``
    beside app.py, else (in a development checkout) the original project's example pictures in
    ../shared, read in place."""
    env = os.environ.get(EXAMPLES_ENV)
    if env is not None:
        folders = [Path(env)] if env else []
    else:
        folders = [REPO_DIR / "examples"]
    for folder in folders:
        if folder.is_dir():
            return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if env is None and shared_photos_dir().is_dir():
        return sorted(str(p) for p in shared_photos_dir().glob("*/seed_*.jpg"))[:limit]
    return []


def build_demo(catalog: Catalog | None = None, service: Service | None = None) -> gr.Blocks:
    """The whole UI. Models load here, once (pass ``service`` to reuse loaded ones)."""
    service = service or Service(catalog)
    examples = example_photos()
    table_headers = ["species", "common name", "genus", "family", "edibility", "in this model"]

    def classify_or_clear(image, model):
        return service.classify(image, model) if image else None

    with gr.Blocks(title="Mushroom identifier") as demo:
        gr.Markdown(
            "# 🍄 Mushroom species identifier\n"
            "Drop, paste or take a photo of a mushroom (or several photos of the same specimen). "
            "You get the likely species with probabilities, the edibility of each from our catalog, "
            "and a warning whenever a poisonous or deadly species is plausible."
        )
        gr.HTML(f'<div id="disclaimer"><b>⚠ Read this first.</b> {html.escape(DISCLAIMER)}</div>')
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                with gr.Tabs():
                    with gr.Tab("One photo", id="one-photo"):
                        image = gr.Image(
                            type="filepath",
                            sources=["upload", "clipboard", "webcam"],
                            label="Photo of the mushroom",
                            height=360,
                            elem_id="photo",
                        )
                        classify_btn = gr.Button("Identify", variant="primary", elem_id="identify")
                        if examples:
                            gr.Examples([[p] for p in examples], inputs=[image], label="Example photos")
                    with gr.Tab("Several photos of one specimen", id="observation"):
                        photos = gr.File(
                            file_count="multiple",
                            file_types=list(IMAGE_SUFFIXES),
                            type="filepath",
                            label=f"Photos of ONE specimen (up to {MAX_PHOTOS}: cap, gills, stem, base)",
                            elem_id="observation-photos",
                        )
                        preview = gr.Gallery(label="Your photos", columns=4, height=180, interactive=False)
                        observe_btn = gr.Button("Identify specimen", variant="primary", elem_id="identify-specimen")
                model_choice = gr.Dropdown(
                    service.choices(),
                    value=service.default,
                    label="Model",
                    visible=len(service.specs) > 1,
                    interactive=True,
                )
                model_info = gr.Markdown(service.model_summary())
            with gr.Column(scale=6):
                warnings_box = gr.HTML(
                    '<div class="result-message">Upload a photo to get an answer.</div>', elem_id="warnings"
                )
                label = gr.Label(num_top_classes=5, label="Top-5 species (probability)", elem_id="top5")
                candidates = gr.HTML(elem_id="candidates-panel")
                with gr.Accordion("Full result (JSON, as the API returns it)", open=False):
                    raw = gr.JSON(label="result")
        with gr.Accordion(f"All {len(service.catalog)} catalog species and their edibility", open=False):
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
                elem_id="species-table",
            )
        gr.Markdown(ENDPOINT_HELP)

        ui_outputs = [label, warnings_box, candidates]
        predict = dict(preprocess=False, concurrency_id="model", show_progress="full")
        classify_btn.click(service.classify, [image, model_choice], raw, api_name="classify", **predict).success(
            render, raw, ui_outputs, api_visibility="private", queue=False
        )
        image.change(classify_or_clear, [image, model_choice], raw, api_visibility="private", **predict).success(
            render, raw, ui_outputs, api_visibility="private", queue=False
        )
        observe_btn.click(
            service.classify_observation,
            [photos, model_choice],
            raw,
            api_name="classify_observation",
            **predict,
        ).success(render, raw, ui_outputs, api_visibility="private", queue=False)
        photos.change(_previewable, photos, preview, api_visibility="private", queue=False)

        search_inputs = [search, only_model, model_choice]
        search.change(service.species, search_inputs, table, api_name="species", concurrency_limit=None)
        only_model.change(service.species, search_inputs, table, api_visibility="private", concurrency_limit=None)
        model_choice.change(service.model_summary, model_choice, model_info, api_visibility="private", queue=False)
        model_choice.change(service.species, search_inputs, table, api_visibility="private", concurrency_limit=None)

    # Inference events share one concurrency group: at most N predictions at once (CPU-bound).
    limit = int(os.environ.get(CONCURRENCY_ENV, "2"))
    demo.queue(default_concurrency_limit=limit, max_size=MAX_QUEUE)
    demo.service = service  # for tests and benchmarks
    return demo


def launch_options(**overrides) -> dict:
    """``demo.launch`` arguments: localhost offline, all interfaces on a Space; upload limit; CSS."""
    on_space = bool(os.environ.get("SPACE_ID"))
    options = dict(
        server_name="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_UPLOAD,
        css=CSS,
        footer_links=["api"],
        show_error=False,  # only gr.Error messages (written for users) reach the page and the client
    )
    options.update(overrides)
    return options


def launch(demo: gr.Blocks, **overrides):
    return demo.launch(**launch_options(**overrides))


__all__ = ["MODEL_ENV", "Service", "build_demo", "launch", "launch_options", "render"]
