"""The Gradio interface, built from the core package. ``app.py`` only launches it.

* ``service``: the models (loaded once), the catalog, the example photos: what the endpoints call;
* ``render``: the answer as HTML, pure functions of the structured result;
* ``layout``: the components, top to bottom; ``events``: what they do (and the API endpoints);
* ``ui.css`` / ``ui.js``: styles (light and dark, WCAG AA) and the browser side (upload state, photo
  shrinking, the lightbox).

Models: the default is ``$MUSHROOM_MODEL`` (or the embedded model); ``$MUSHROOM_EXTRA_MODELS``
(comma-separated specs) adds more to a selector. Every model loads once, when the app starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from mushroom_id.core.models import MODEL_ENV
from mushroom_id.serving.flags import FlagStore
from mushroom_id.serving.predictor import configure_threads
from mushroom_id.serving.ui.events import wire
from mushroom_id.serving.ui.layout import build_page
from mushroom_id.serving.ui.render import BADGE_TEXT, PLACEHOLDER, answer_html, badge, render
from mushroom_id.serving.ui.service import MAX_UPLOAD, Service, example_photos, model_specs

HERE = Path(__file__).resolve().parent
CSS_FILE = HERE / "ui.css"
JS_FILE = HERE / "ui.js"
CONCURRENCY_ENV = "MUSHROOM_CONCURRENCY"  # predictions run at the same time (default 2 = CPU cores of a free Space)
MAX_QUEUE = 32  # requests waiting; more get "queue full" instead of a long wait

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

# Gradio scopes the rules of ``css`` inside @media to its content, so the page margins (outside it)
# are set here, unscoped.
HEAD_STYLE = """<style>
@media (max-width: 480px) {.gradio-container .main.app {padding-left: 10px !important; padding-right: 10px !important;}}
</style>"""


def app_url() -> str:
    """What ``gradio_client.Client`` needs to reach this app: the Space's id on a Space, else the local URL."""
    if os.environ.get("SPACE_ID"):
        return os.environ["SPACE_ID"]
    port = os.environ.get("GRADIO_SERVER_PORT", "7860")
    return f"http://127.0.0.1:{port}/"


def build_demo(
    catalog=None,
    service: Service | None = None,
    flag_store: FlagStore | None = None,
) -> gr.Blocks:
    """The whole UI. Models load here, once (pass ``service`` to reuse loaded ones)."""
    service = service or Service(catalog)
    flags = flag_store if flag_store is not None else FlagStore.from_env()
    examples = example_photos(service)
    with gr.Blocks(title="Mushroom identifier") as demo:
        page = build_page(service, examples, app_url())
        wire(page, service, flags, examples)
    # Inference events share one concurrency group: at most N predictions at once (CPU-bound).
    limit = int(os.environ.get(CONCURRENCY_ENV, "2"))
    demo.queue(default_concurrency_limit=limit, max_size=MAX_QUEUE)
    demo.service = service  # for tests and benchmarks
    demo.flag_store = flags
    return demo


def theme() -> gr.themes.Base:
    """Gradio's default theme with system fonts and a primary button readable in light and dark (>= 4.5:1)."""
    return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS)).set(
        button_primary_background_fill="#9a3412",
        button_primary_background_fill_hover="#7c2d12",
        button_primary_text_color="#ffffff",
        button_primary_background_fill_dark="#fdba74",
        button_primary_background_fill_hover_dark="#fed7aa",
        button_primary_text_color_dark="#1c1917",
    )


def launch_options(service: Service | None = None, **overrides) -> dict:
    """``demo.launch`` arguments: localhost offline, all interfaces on a Space; upload limit; CSS and JS;
    the reference photo files (and only those) may be served."""
    on_space = bool(os.environ.get("SPACE_ID"))
    options = dict(
        server_name="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size=MAX_UPLOAD,
        css=CSS_FILE.read_text(encoding="utf-8"),
        head=HEAD_STYLE + f"<script>{JS_FILE.read_text(encoding='utf-8')}</script>",
        theme=theme(),
        footer_links=["api"],
        show_error=False,  # only gr.Error messages (written for users) reach the page and the client
        allowed_paths=service.reference_files() if service is not None else [],
    )
    options.update(overrides)
    return options


def launch(demo: gr.Blocks, **overrides):
    configure_threads()  # $MUSHROOM_THREADS / $MUSHROOM_RUNTIME: process-wide, so set once by the app
    return demo.launch(**launch_options(getattr(demo, "service", None), **overrides))


__all__ = [
    "BADGE_TEXT",
    "MODEL_ENV",
    "PLACEHOLDER",
    "Service",
    "answer_html",
    "badge",
    "build_demo",
    "example_photos",
    "launch",
    "launch_options",
    "model_specs",
    "render",
]
