"""The page's components, top to bottom (no behaviour here: ``events.wire`` connects them).

Phone first: the photo input, then the answer (the user's photo beside the top candidate, one caution
line, "Narrow it down"), then the other candidates and the details. On a desktop the answer sits
beside the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from mushroom_id.core.catalog import Catalog
from mushroom_id.core.safety import DISCLAIMER
from mushroom_id.serving.ui.render import PLACEHOLDER, _e, message_html
from mushroom_id.serving.ui.service import IMAGE_SUFFIXES, MAX_PHOTOS, Service, examples_credits

TABLE_HEADERS = ["species", "common name", "genus", "family", "edibility", "in this model", "sources disagree"]

# "Narrow it down": one click on an answer button sends {key, value} to Python (see events.refine).
NARROW_TEMPLATE = "${value && value.html ? value.html : ''}"
NARROW_JS = """
element.addEventListener('click', (event) => {
  const b = event.target.closest('button[data-key]');
  if (!b) return;
  window.__midNarrowKeyboard = event.detail === 0; // Enter/Space: keep the keyboard in "Narrow it down"
  props.value = {...(props.value || {}), pick: {key: b.dataset.key, value: b.dataset.value}};
  trigger('submit');
});
"""


@dataclass
class Page:
    """Every component the events use."""

    state: gr.State
    image: gr.Image
    identify: gr.Button
    tab_one: gr.Tab
    tab_many: gr.Tab
    photos: gr.File
    preview: gr.Gallery
    identify_many: gr.Button
    model: gr.Dropdown
    answer: gr.HTML
    narrow: gr.HTML
    more: gr.HTML
    flag_panel: gr.Accordion
    flag_species: gr.Dropdown
    flag_photo: gr.Checkbox
    flag_note: gr.Textbox
    flag_send: gr.Button
    flag_status: gr.Markdown
    raw: gr.JSON
    examples: gr.Gallery | None
    search: gr.Textbox
    only_model: gr.Checkbox
    table: gr.Dataframe
    answers_in: gr.JSON


def _species_choices(catalog: Catalog) -> list[tuple[str, str]]:
    return [(f"{s.name} — {s.common_name}" if s.common_name else s.name, s.name) for s in catalog]


def api_help(url: str) -> str:
    """The on-page snippet for calling the app from code, with this app's real id or URL."""
    return f"""\
**Use it from code** (`pip install gradio_client`):
```python
from gradio_client import Client, handle_file
client = Client("{url}")
result = client.predict(handle_file("photo.jpg"), api_name="/classify")
print(result["candidates"][0]["species"], result["danger_panel"])
# what you saw in the field re-ranks the same photo at once (the network does not run again):
print(result["questions"][0]["text"], [o["value"] for o in result["questions"][0]["options"]])
result = client.predict(answers={{"stipe": "ring", "spore_print": "white-cream"}}, api_name="/refine")
```
`/classify_observation` takes a list of `handle_file(...)` photos of one specimen; both also take
`answers=`. All return the JSON shown under "Full result". See "Use via API" at the bottom of the page.
"""


def build_page(service: Service, examples: list[tuple[str, str]], url: str) -> Page:
    """Create the components (inside an open ``gr.Blocks``)."""
    catalog = service.catalog
    gr.HTML(
        '<div id="header"><h1>Mushroom species identifier</h1>'
        "<p>A photo in: the likely species out, with a warning when a deadly or poisonous one is in play.</p></div>"
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
                    identify = gr.Button("Identify", variant="primary", elem_id="identify")
                with gr.Tab("Several photos", id="observation") as tab_many:
                    photos = gr.File(
                        file_count="multiple",
                        file_types=sorted(IMAGE_SUFFIXES),
                        type="filepath",
                        label=f"Photos of one specimen (up to {MAX_PHOTOS}: cap, underside, stem, base)",
                        elem_id="observation-photos",
                    )
                    preview = gr.Gallery(label="Your photos", columns=4, height=160, interactive=False)
                    identify_many = gr.Button(
                        "Identify specimen", variant="primary", elem_id="identify-specimen", interactive=False
                    )
            model = gr.Dropdown(
                service.choices(),
                value=service.default,
                label="Model",
                visible=len(service.specs) > 1,
                interactive=True,
            )
            answers_in = gr.JSON(value={}, label="answers", visible=False)
        with gr.Column(scale=7, min_width=320, elem_id="answer-column"):
            answer = gr.HTML(message_html(PLACEHOLDER), elem_id="answer-panel", min_height=120)
            narrow = gr.HTML({"html": ""}, html_template=NARROW_TEMPLATE, js_on_load=NARROW_JS, elem_id="narrow-panel")
            more = gr.HTML("", elem_id="more-panel")
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
                flag_send = gr.Button("Report this answer as wrong", elem_id="flag-send")
                flag_status = gr.Markdown(elem_id="flag-status")
            with gr.Accordion("Full result (JSON, as the API returns it)", open=False):
                raw = gr.JSON(label="result")
    gallery = None
    if examples:
        gallery = gr.Gallery(
            [(path, caption) for path, caption in examples],
            label="Example photos: click one to try it",
            columns=8,
            object_fit="cover",
            buttons=[],
            allow_preview=False,
            interactive=False,
            elem_id="examples",
        )
        credits = examples_credits(service)
        if credits:
            gr.HTML(credits)
    gr.Markdown(service.model_summary() + "\n\n" + service.photos_summary(), elem_id="model-info")
    with gr.Accordion(f"All {len(catalog)} catalog species and their edibility", open=False):
        with gr.Row():
            search = gr.Textbox(
                label="Search: scientific or common name, genus, family, edibility", scale=4, elem_id="species-search"
            )
            only_model = gr.Checkbox(label="only species the model knows", value=False, scale=1)
        table = gr.Dataframe(
            label="species",  # the /species endpoint's return value is named by it
            show_label=False,
            headers=TABLE_HEADERS,
            value=service.species(),
            interactive=False,
            max_height=420,
            wrap=True,
            column_widths=["17%", "15%", "10%", "12%", "14%", "8%", "24%"],
            elem_id="species-table",
        )
    gr.Markdown(api_help(url), elem_id="api-help")
    return Page(
        state=state,
        image=image,
        identify=identify,
        tab_one=tab_one,
        tab_many=tab_many,
        photos=photos,
        preview=preview,
        identify_many=identify_many,
        model=model,
        answer=answer,
        narrow=narrow,
        more=more,
        flag_panel=flag_panel,
        flag_species=flag_species,
        flag_photo=flag_photo,
        flag_note=flag_note,
        flag_send=flag_send,
        flag_status=flag_status,
        raw=raw,
        examples=gallery,
        search=search,
        only_model=only_model,
        table=table,
        answers_in=answers_in,
    )
