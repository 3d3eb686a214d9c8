"""What happens on the page: uploads, the answer, field answers, examples, reports, the API endpoints.

API endpoints (see docs/api.md; the classify endpoints return the structured result):
  /classify               one image (+ optional answers)            -> result dict
  /classify_observation   several photos of one specimen (+ answers) -> result dict
  /refine                 other answers for the session's last photos -> result dict (no network)
  /species                search the catalog table                   -> rows

Every new photo, error, tab switch or model change clears the previous answer (a new file clears it
in the browser at once, ui.js). Field answers re-rank the cached photo probabilities (gr.State): no
network runs again.
"""

from __future__ import annotations

import base64
from pathlib import Path

import gradio as gr

from mushroom_id.serving.flags import FlagStore
from mushroom_id.serving.reference_photos import thumbnail_bytes
from mushroom_id.serving.ui.layout import Page
from mushroom_id.serving.ui.render import (
    PENDING,
    PLACEHOLDER,
    UserPhoto,
    first_screen_html,
    message_html,
    more_html,
    narrow_html,
)
from mushroom_id.serving.ui.service import (
    IMAGE_SUFFIXES,
    MAX_PHOTOS,
    Service,
    _answers,
    _file_path,
    upload_sha256,
)

EXPIRED = (
    "This answer is no longer kept (a day after its last use, or the app restarted): upload the photo again "
    "and give your answers again."
)
PHONE_MAX_PX = 768  # below this width the columns stack and the page scrolls to the answer
USER_THUMB_PX = 480

# On phones the columns stack: bring the answer (and its progress) into view when a photo arrives;
# the upload has ended, so "Identify" works again (ui.js disabled it).
AFTER_UPLOAD_JS = f"""() => {{
  if (window.midEnableIdentify) window.midEnableIdentify();
  if (window.innerWidth >= {PHONE_MAX_PX}) return [];
  const go = () => {{
    const el = document.getElementById('answer-panel');
    if (el) el.scrollIntoView({{block: 'start'}});
  }};
  requestAnimationFrame(() => setTimeout(go, 30));
  return [];
}}"""


def user_photo(path: str | None) -> UserPhoto | None:
    """The user's first photo, small, for the headline (None when it cannot be read)."""
    if not path:
        return None
    try:
        data = thumbnail_bytes(path, size=USER_THUMB_PX)
    except OSError:
        return None
    return UserPhoto("data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"), upload_sha256(path))


def wire(page: Page, service: Service, flags: FlagStore, examples: list[tuple[str, str]]) -> None:
    """Connect the components of ``page`` (inside the open ``gr.Blocks``)."""
    catalog, refs = service.catalog, service.refs
    outputs = [page.answer, page.narrow, page.more, page.raw, page.state, page.flag_panel, page.flag_status]

    def show(result: dict, state: dict):
        photo = state.get("photo")
        photo = UserPhoto(*photo) if photo else None
        return (
            first_screen_html(result, refs, catalog, photo),
            # the key and the answers ride with the page too (see refine: a session Gradio dropped)
            {
                "html": narrow_html(result, state.get("answers")),
                "key": state.get("key"),
                "answers": state.get("answers"),
            },
            more_html(result, refs, catalog, photo),
            result,
            {**state, "result": result},
            gr.update(visible=True, open=False),
            "",
        )

    def message(text: str, kind: str = "placeholder"):
        return message_html(text, kind), {"html": ""}, "", None, None, gr.update(visible=False), ""

    def pending(payload=None):
        return message(PENDING, "pending") if payload else message(PLACEHOLDER)

    def answer_for(paths: list[str], model):
        result, cache = service.observe(paths, model)
        photo = user_photo(paths[0])
        key = service.kept.keep(cache)
        state = {"paths": paths, "cache": cache, "answers": {}, "photo": tuple(photo) if photo else None, "key": key}
        return show(result, state)

    def run_one(image, model):
        """The page's one-photo path: errors show in the answer panel, and a file that is not a
        photo is removed from the input (no broken-image icon)."""
        try:
            path = _file_path(image)
            if not path:
                return *message(PLACEHOLDER), gr.skip()
            return *answer_for([path], model), gr.skip()
        except gr.Error as e:
            return *message(e.message, "error"), gr.update(value=None)

    def run_many(files, model):
        try:
            paths = [p for p in map(_file_path, files or []) if p]
            if len(paths) > MAX_PHOTOS or not paths:
                service.observe(paths, model)  # raises the message
            return answer_for(paths, model)
        except gr.Error as e:
            return message(e.message, "error")

    def refine(narrow_value, state):
        """A field answer (or its removal) -> the re-ranked answer, from the cached probabilities."""
        pick = (narrow_value or {}).get("pick") or {}
        if not pick.get("key"):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not state or not state.get("cache"):  # Gradio dropped the session (hours later, a phone that slept)
            cache = service.kept.get((narrow_value or {}).get("key"))
            if cache is None:
                return message(EXPIRED, "error")
            answers = (narrow_value or {}).get("answers") or {}
            state = {"paths": [], "cache": cache, "answers": answers, "photo": None, "key": narrow_value["key"]}
        answers = dict(state.get("answers") or {})
        if pick.get("value"):  # "not sure" is kept: it is no evidence, and that question is not asked again
            answers[pick["key"]] = pick["value"]
        else:  # a chip's ✕
            answers.pop(pick["key"], None)
        try:
            result = service.refine(state["cache"], answers)
        except gr.Error as e:
            return message(e.message, "error")
        return show(result, {**state, "answers": answers})

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

    # The API: hidden triggers, so the endpoints return exactly the result (errors as AppError).
    # The session keeps the last photo's probabilities (gr.State), so /refine re-ranks them at once.
    def api_classify(image, model, answers):
        path = _file_path(image)
        result, cache = service.observe([path] if path else [], model, _answers(answers))
        return result, {"cache": cache}

    def api_classify_observation(photos, model, answers):
        paths = [p for p in map(_file_path, photos or []) if p]
        result, cache = service.observe(paths, model, _answers(answers))
        return result, {"cache": cache}

    def api_refine(answers, api_state):
        return service.refine((api_state or {}).get("cache"), _answers(answers))

    api_state = gr.State(None)
    api_one = gr.Button(visible=False)
    api_many = gr.Button(visible=False)
    api_again = gr.Button(visible=False)
    api = dict(preprocess=False, concurrency_id="model")
    inputs = [page.model, page.answers_in]
    api_one.click(api_classify, [page.image, *inputs], [page.raw, api_state], api_name="classify", **api)
    api_many.click(
        api_classify_observation, [page.photos, *inputs], [page.raw, api_state], api_name="classify_observation", **api
    )
    api_again.click(api_refine, [page.answers_in, api_state], page.raw, api_name="refine", queue=False)

    # The page: clear and show progress where the answer appears, scroll there on phones, answer.
    private = dict(api_visibility="private")
    predict = dict(preprocess=False, concurrency_id="model", show_progress="full", show_progress_on=[page.answer])
    quick = dict(queue=False, show_progress="hidden", **private)

    def chain(trigger, inputs, fn, fn_outputs):
        return (
            trigger(pending, inputs[:1], outputs, preprocess=False, **quick)
            .then(None, None, None, js=AFTER_UPLOAD_JS, **private)
            .then(fn, inputs, fn_outputs, **predict, **private)
        )

    chain(page.image.input, [page.image, page.model], run_one, outputs + [page.image])
    chain(page.identify.click, [page.image, page.model], run_one, outputs + [page.image])
    chain(page.identify_many.click, [page.photos, page.model], run_many, outputs)
    page.narrow.submit(refine, [page.narrow, page.state], outputs, queue=False, **private)
    page.photos.change(
        photos_changed, page.photos, [page.preview, page.identify_many, *outputs], preprocess=False, **quick
    )
    if page.examples is not None:

        def pick_example(evt: gr.SelectData):
            value = evt.value or {}
            picked = _file_path(value.get("image") if isinstance(value, dict) else None)
            return picked or examples[evt.index][0]

        picked = page.examples.select(pick_example, None, page.image, **quick)
        chain(picked.then, [page.image, page.model], run_one, outputs + [page.image])
    for tab in (page.tab_one, page.tab_many):
        tab.select(lambda: message(PLACEHOLDER), None, outputs, **quick)
    page.flag_send.click(
        send_flag, [page.state, page.flag_species, page.flag_photo, page.flag_note], page.flag_status, **private
    )

    search_inputs = [page.search, page.only_model, page.model]
    page.search.change(service.species, search_inputs, page.table, api_name="species", concurrency_limit=None)
    page.only_model.change(service.species, search_inputs, page.table, concurrency_limit=None, **private)
    page.model.change(lambda: message(PLACEHOLDER), None, outputs, **quick)
    page.model.change(service.species, search_inputs, page.table, concurrency_limit=None, **private)
