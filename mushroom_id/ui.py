"""The Gradio interface, built from the core package. ``app.py`` only launches it.

API endpoints (all return the structured result documented in mushroom_id.predict):
  /classify               one image
  /classify_observation   several photos of one specimen
  /species                the catalog table (name, common name, genus, edibility, in model)
"""

from __future__ import annotations

import html
import os
from functools import lru_cache

import gradio as gr

from .catalog import Catalog, default_catalog
from .images import ImageError
from .models import MODEL_ENV, load_model, resolve_spec
from .predict import Predictor
from .safety import DISCLAIMER, EDIBILITY_TEXT

EXTRA_MODELS_ENV = "MUSHROOM_EXTRA_MODELS"  # comma-separated specs offered next to the default
MAX_PHOTOS = 8
MAX_UPLOAD = "25mb"

BADGE_COLOURS = {
    "deadly": "#7f0000", "poisonous": "#c62828", "psychoactive": "#6a1b9a", "inedible": "#5d4037",
    "unknown": "#616161", "edible": "#2e7d32", "choice": "#1b5e20",
}

CSS = """
.warning-box {border: 3px solid #c62828; background: #ffebee; color: #7f0000; padding: 10px 14px;
  border-radius: 8px; font-weight: 600;}
.notice-box {border: 2px solid #f9a825; background: #fffde7; color: #5d4037; padding: 10px 14px; border-radius: 8px;}
.badge {color: white; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600;}
.disclaimer {border-left: 4px solid #c62828; padding: 6px 12px; background: #fafafa;}
"""


def model_specs() -> list[str]:
    specs = [resolve_spec(None)]
    specs += [s.strip() for s in os.environ.get(EXTRA_MODELS_ENV, "").split(",") if s.strip()]
    return list(dict.fromkeys(specs))


@lru_cache(maxsize=4)
def get_predictor(spec: str) -> Predictor:
    """Each model loads once per process."""
    return Predictor(load_model(spec))


def badge(status: str) -> str:
    return f'<span class="badge" style="background:{BADGE_COLOURS[status]}">{html.escape(EDIBILITY_TEXT[status])}</span>'


def result_html(result: dict) -> tuple[dict, str, str]:
    """(label dict for gr.Label, candidates HTML, warnings HTML) from a structured result."""
    labels = {c["species"]: c["probability"] for c in result["candidates"]}
    rows = []
    for c in result["candidates"]:
        common = f" ({html.escape(c['common_name'])})" if c["common_name"] else ""
        rows.append(f"<li><b><i>{html.escape(c['species'])}</i></b>{common}: {c['probability']:.1%} {badge(c['edibility'])}</li>")
    head = f"<p><b>{html.escape(result['message'])}</b></p>"
    extra = ""
    if result["genus_answer"]:
        g = result["genus_answer"]
        extra += f"<p>Genus-level answer: <b><i>{html.escape(g['name'])}</i></b> ({g['probability']:.0%})</p>"
    if result["prediction_set"]["species"] and result["prediction_set"]["coverage"]:
        names = ", ".join(f"<i>{html.escape(s)}</i>" for s in result["prediction_set"]["species"])
        extra += f"<p>Prediction set ({result['prediction_set']['coverage']:.0%} coverage): {names}</p>"
    candidates = head + (f"<ul>{''.join(rows)}</ul>" if rows else "") + extra
    danger = [w for w in result["warnings"] if w["kind"] in ("toxic_candidate", "not_fungus")]
    notices = [w for w in result["warnings"] if w not in danger]
    warn = ""
    if danger:
        items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in danger)
        warn += f'<div class="warning-box">⚠ WARNING<ul>{items}</ul></div>'
    if notices:
        items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in notices)
        warn += f'<div class="notice-box"><ul>{items}</ul></div>'
    return labels, candidates, warn


def catalog_rows(catalog: Catalog, model_labels: set[str]) -> list[list[str]]:
    return [
        [s.name, s.common_name, s.genus, s.edibility, "yes" if s.name in model_labels else "no"]
        for s in catalog
    ]


def build_demo(catalog: Catalog | None = None) -> gr.Blocks:
    catalog = catalog or default_catalog()
    specs = model_specs()
    default = get_predictor(specs[0])
    covered = set(default.labels)

    def run(spec: str | None, images: list) -> dict:
        try:
            predictor = get_predictor(spec or specs[0])
        except Exception as e:
            raise gr.Error(f"model {spec!r} could not be loaded: {e}") from e
        if not images:
            raise gr.Error("No photo received: upload a JPEG or PNG photo of the mushroom.")
        if len(images) > MAX_PHOTOS:
            raise gr.Error(f"At most {MAX_PHOTOS} photos of one specimen, got {len(images)}.")
        try:
            return predictor.predict_observation(images)
        except ImageError as e:
            raise gr.Error(str(e)) from e

    def classify(image: str | None, spec: str | None = None) -> dict:
        return run(spec, [image] if image else [])

    def classify_observation(files: list[str] | None, spec: str | None = None) -> dict:
        return run(spec, list(files or []))

    def show(result: dict):
        labels, cands, warn = result_html(result)
        return labels, cands, warn, result

    with gr.Blocks(title="Mushroom identifier") as demo:
        gr.Markdown(
            "# 🍄 Mushroom species identifier\n"
            "Drop a photo of a mushroom (or several photos of the same specimen). You get the likely species "
            "with probabilities, the edibility status of each from our catalog, and warnings whenever a "
            "toxic species is plausible."
        )
        gr.HTML(f'<div class="disclaimer">⚠ {html.escape(DISCLAIMER)}</div>')
        with gr.Row():
            with gr.Column():
                with gr.Tab("One photo"):
                    image = gr.Image(type="filepath", sources=["upload", "clipboard", "webcam"], label="Photo")
                    classify_btn = gr.Button("Identify", variant="primary")
                with gr.Tab("Several photos of one specimen"):
                    files = gr.File(file_count="multiple", file_types=["image"], type="filepath", label="Photos")
                    observe_btn = gr.Button("Identify specimen", variant="primary")
                model_choice = gr.Dropdown(specs, value=specs[0], label="Model", visible=len(specs) > 1)
            with gr.Column():
                warnings_box = gr.HTML(label="Warnings")
                label = gr.Label(num_top_classes=5, label="Top-5 species")
                candidates = gr.HTML(label="Candidates and edibility")
                with gr.Accordion("Full result (JSON)", open=False):
                    raw = gr.JSON()
        gr.Markdown(
            f"**Model:** `{default.loaded.model_id}` knows {len(covered)} of the {len(catalog)} catalog "
            "species (those with training photos). A mushroom outside that list will be named as the "
            "closest species it knows: check the table below."
        )
        with gr.Accordion("All catalog species and their edibility", open=False):
            search = gr.Textbox(label="Search (scientific or common name, genus, status)")
            table = gr.Dataframe(
                headers=["species", "common name", "genus", "edibility", "in this model"],
                value=catalog_rows(catalog, covered), interactive=False, max_height=400,
            )

        def filter_species(query: str):
            q = (query or "").strip().lower()
            rows = catalog_rows(catalog, covered)
            return [r for r in rows if not q or any(q in cell.lower() for cell in r)]

        search.change(filter_species, search, table, api_name="species")
        ui_outputs = [label, candidates, warnings_box, raw]
        classify_btn.click(classify, [image, model_choice], raw, api_name="classify").success(
            show, raw, ui_outputs, api_visibility="private"
        )
        image.upload(classify, [image, model_choice], raw, api_visibility="private").success(
            show, raw, ui_outputs, api_visibility="private"
        )
        observe_btn.click(classify_observation, [files, model_choice], raw, api_name="classify_observation").success(
            show, raw, ui_outputs, api_visibility="private"
        )
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    on_space = bool(os.environ.get("SPACE_ID"))
    options = dict(
        server_name="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_UPLOAD,
        css=CSS,
        footer_links=["api"],
    )
    options.update(kwargs)
    return demo.launch(**options)


__all__ = ["build_demo", "launch", "MODEL_ENV", "result_html"]
