"""The answer as HTML: pure functions of the structured result (no Gradio, no model).

The page shows three parts, one Gradio component each:

* :func:`first_screen_html` (``#answer-panel``): the user's photo beside the top candidate (name,
  common name, danger badge, a large reference photo), then ONE caution line: the red panel when a
  danger matters (:func:`mushroom_id.core.danger.danger_panel`, already in the result), else a
  neutral line;
* :func:`narrow_html` (``#narrow-panel``): "Narrow it down", the best next field question with large
  buttons (filled when the result carries ``questions``);
* :func:`more_html` (``#more-panel``): the other candidates with up to 3 photos each, the top one
  beside its dangerous lookalikes, and a details fold with every warning in plain words (a dangerous
  species the red panel does not name is listed there: nothing is dropped), the prediction set and
  the model.

Edibility of a species that is not dangerous is never green: "edible per sources" in neutral grey.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from urllib.parse import quote

from mushroom_id.core.answer_text import caution_line
from mushroom_id.core.answer_text import status as answer_status
from mushroom_id.core.catalog import DANGEROUS, EDIBLE, Catalog, Species, default_catalog
from mushroom_id.core.danger import unnamed_dangers
from mushroom_id.core.questions import NOT_SURE, QUESTIONS, describe
from mushroom_id.core.safety import EDIBILITY_TEXT, danger_rank
from mushroom_id.core.words import SHORT_EDIBILITY, percent
from mushroom_id.serving.reference_photos import Photo, ReferencePhotos
from mushroom_id.serving.ui.pictures import option_picture

# Short badges (one or two words); the full EDIBILITY_TEXT is the badge's tooltip. Never green.
BADGE_TEXT = SHORT_EDIBILITY  # the CLI prints the same words (core.answer_text)
EDIBLE_FOOTNOTE = (
    "* Edible according to the sources named in the catalog, never on a photo's word: only once someone "
    "who knows mushrooms has identified the specimen in hand, and it is properly cooked."
)
# Beside an edible top guess, on the first screen (a tooltip cannot be reached by touch).
EDIBLE_NOTE_SHORT = "* per the catalog's sources, not this photo: only if an expert confirms the mushroom in hand."
SET_SHOWN = 15  # prediction-set species listed in the details (the JSON has all)
PLACEHOLDER = "Upload a photo to get an answer. It appears here."
PENDING = "Identifying… the answer appears here in a few seconds."
UPLOADING = "Uploading your photo…"
SPORE_PRINT_HOWTO = (
    "Spore print: cut off the cap, lay it gills down on white and dark paper, cover it with a glass for a few "
    "hours, then look at the colour of the dust."
)


class UserPhoto(NamedTuple):
    """The user's upload as the page shows it: a small ``data:`` URI, and its sha256 (never shown back
    as a reference photo)."""

    uri: str
    sha256: str = ""


def _e(text) -> str:
    return html.escape(str(text if text is not None else ""))


pct = percent  # probabilities as the page shows them everywhere (core.answer_text.percent)


def badge(status: str) -> str:
    """A short edibility badge; the full catalog wording is its tooltip."""
    status = status if status in BADGE_TEXT else "unknown"
    return (
        f'<span class="badge badge-{status}" data-edibility="{status}" title="{_e(EDIBILITY_TEXT[status])}">'
        f"{_e(BADGE_TEXT[status])}</span>"
    )


def file_url(path: str) -> str:
    """The URL Gradio serves an allowed file under (``launch_options`` allows the reference photos)."""
    return "/gradio_api/file=" + quote(str(path))


def _species(catalog: Catalog | None, name: str) -> Species | None:
    if catalog is None or catalog.resolve(name) is None:
        return None
    return catalog.get(name)


def _credit_link(photo: Photo) -> str:
    source, sep, licence = _e(photo.credit).partition(" · ")
    text = f'{source}{sep}<span class="nowrap">{licence}</span>' if sep else source
    return f'<a href="{_e(photo.page)}" target="_blank" rel="noopener" title="{_e(photo.credit_detail)}">{text}</a>'


def zoomable(photo: Photo, name: str, refs: ReferencePhotos, size: str = "thumb") -> str:
    """A reference photo that enlarges on click, tap, Enter or Space (the lightbox in ui.js)."""
    src = file_url(photo.path) if size == "large" else (refs.data_uri(photo) or file_url(photo.path))
    alt = f"Reference photo of {name}"
    return (
        f'<button type="button" class="zoom" data-full="{_e(file_url(photo.path))}" '
        f'data-caption="{_e(name)} — {_e(photo.credit)}" aria-label="Enlarge: {_e(alt)}">'
        f'<img src="{_e(src)}" alt="{_e(alt)}" loading="lazy"></button>'
    )


def no_photo(why: str = "No clear reference photo with an open licence yet") -> str:
    return f'<div class="noref" role="img" aria-label="{_e(why)}">{_e(why)}</div>'


def headline_html(
    result: Mapping, refs: ReferencePhotos | None, catalog: Catalog | None, user_photo: UserPhoto | None = None
) -> str:
    """The user's photo beside the top candidate: name, common name, badge, a large reference photo."""
    top = result["candidates"][0]
    name = top["species"]
    sp = _species(catalog, name)
    common = top.get("common_name") or (sp.common_name if sp else "")
    status, kicker = answer_status(result)
    photo = refs.get(name, user_photo.sha256 if user_photo else None) if refs else None
    ref = (
        zoomable(photo, name, refs, "large") + f"<figcaption>{_credit_link(photo)}</figcaption>"
        if photo and refs is not None
        else no_photo()
    )
    yours = (
        f'<figure class="yours"><img src="{_e(user_photo.uri)}" alt="Your photo of the mushroom">'
        "<figcaption>Your photo</figcaption></figure>"
        if user_photo
        else ""
    )
    prob = "" if result.get("below_floor") else f'<span class="prob">{pct(top["probability"])}</span>'
    note = f'<p class="edible-note" id="edible-note">{_e(EDIBLE_NOTE_SHORT)}</p>' if top["edibility"] in EDIBLE else ""
    return (
        f'<section id="headline" class="headline" data-status="{status}">'
        f'<div class="pair">{yours}<figure class="ref-main">{ref}</figure></div>'
        f'<div class="top-text"><p class="kicker">{_e(kicker)}</p>'
        f'<h2 id="top-name"><i>{_e(name)}</i></h2>'
        + (f'<p class="common">{_e(common)}</p>' if common else "")
        + f'<p class="line">{badge(top["edibility"])}{prob}{_page_link(sp)}</p>{note}</div></section>'
    )


def _page_link(sp: Species | None) -> str:
    if sp is None or not sp.url:
        return ""
    site = "Wikipedia" if "wikipedia.org" in sp.url else "Wild Food UK" if "wildfooduk" in sp.url else "species page"
    return f'<a class="species-page" href="{_e(sp.url)}" target="_blank" rel="noopener">{site} ↗</a>'


def _panel_photo(name: str, refs: ReferencePhotos | None, exclude: str | None) -> str:
    photo = refs.get(name, exclude) if refs else None
    return f'<span class="panel-photo">{zoomable(photo, name, refs)}</span>' if photo and refs is not None else ""


def caution_html(result: Mapping, refs: ReferencePhotos | None = None, exclude: str | None = None) -> str:
    """ONE caution: the red panel (at most 3 dangerous species, each with why and, where a curated
    confusion or a danger profile says it, what to check, beside the species' reference photo), else
    the neutral line beside an edible top guess, else nothing."""
    panel = result.get("danger_panel") or []
    if not panel:
        line = caution_line(result)
        return f'<p id="caution-line" class="caution">{_e(line)}</p>' if line else ""
    items = []
    for d in panel:
        text = (
            f'<span class="who"><b><i>{_e(d["species"])}</i></b> {badge(d["edibility"])}</span>'
            f' <span class="why">— {_e(d["reason"])}</span>'
            + (f'<span class="check"><b>Check:</b> {_e(d["check"])}</span>' if d.get("check") else "")
        )
        photo = _panel_photo(d["species"], refs, exclude) if d.get("check") else ""
        kind = ' class="with-photo"' if photo else ""
        items.append(f'<li data-species="{_e(d["species"])}"{kind}><div class="text">{text}</div>{photo}</li>')
    items = "".join(items)
    return (
        '<div id="danger-panel" class="danger-panel" role="alert">'
        '<p class="danger-title"><span aria-hidden="true">⚠</span> Danger: deadly or poisonous species in play</p>'
        f"<ul>{items}</ul></div>"
    )


def first_screen_html(
    result: Mapping | None,
    refs: ReferencePhotos | None = None,
    catalog: Catalog | None = None,
    user_photo: UserPhoto | None = None,
) -> str:
    """The first screen: headline and one caution line (a message when there is no species answer)."""
    if not result:
        return message_html(PLACEHOLDER)
    if not result.get("candidates"):  # not a fungus: one sentence, once, not in red
        return (
            '<div id="answer" data-state="answer"><div id="not-fungus" class="notice">'
            f'<p id="result-message">{_e(result.get("message", ""))}</p></div></div>'
        )
    catalog = catalog if catalog is not None else default_catalog()
    return (
        '<div id="answer" data-state="answer">'
        f"{headline_html(result, refs, catalog, user_photo)}"
        f'<p id="result-message" class="sr-only">{_e(result.get("message", ""))}</p>'
        f"{caution_html(result, refs, user_photo.sha256 if user_photo else None)}</div>"
    )


# ---------------------------------------------------------------- narrow it down


def answer_words(key: str, value: str) -> tuple[str, str]:
    """(the question, the answer) in people's words for an answer chip; "not sure" for a skipped one."""
    q = QUESTIONS.get(key)
    if q is None:
        return key, value
    if " ".join(str(value).lower().replace("_", " ").split()) in NOT_SURE:
        return q.text, "not sure"
    try:
        return q.text, describe(key, value)
    except (KeyError, ValueError):
        return q.text, value


def narrow_html(result: Mapping | None, given_answers: Mapping[str, str] | None = None) -> str:
    """The best next question with one large button per answer (and its picture), the number of
    candidate species each keeps, the answers given so far in words (each can be cleared;
    ``given_answers``: as the person gave them, "not sure" included; default the result's)."""
    if not result or not result.get("candidates"):
        return ""
    questions: Sequence[Mapping] = result.get("questions") or []
    answers: Mapping[str, str] = given_answers if given_answers is not None else (result.get("answers") or {})
    given = ""
    if answers:
        chips = []
        for k, v in answers.items():
            question, words = answer_words(k, v)
            chips.append(
                f'<button type="button" class="chip" data-key="{_e(k)}" data-value="" '
                f'aria-label="Clear the answer to {_e(question)} {_e(words)}">'
                f'<span class="q">{_e(question)}</span> <b>{_e(words)}</b> ✕</button>'
            )
        chips = "".join(chips)
        given = f'<div class="given"><span>Your answers:</span> {chips}</div>'
    if not questions:
        body = '<p class="muted">No more questions would change these candidates.</p>' if answers else ""
        if not body and not given:
            return ""
        return f'<section id="narrow" class="narrow"><h3>Narrow it down</h3>{given}{body}</section>'
    q = questions[0]
    shown = len(result.get("candidates") or [])
    buttons = "".join(
        f'<button type="button" class="option" data-key="{_e(q["key"])}" data-value="{_e(o["value"])}">'
        f'{option_picture(q["key"], o["value"])}<span class="label">{_e(o["label"])}</span>'
        f'<span class="keeps">fits {_e(o.get("keeps", "?"))} of {shown}</span></button>'
        for o in q.get("options") or []
    )
    buttons += (
        f'<button type="button" class="option not-sure" data-key="{_e(q["key"])}" data-value="not sure">'
        '<span class="label">Not sure</span><span class="keeps">skip</span></button>'
    )
    howto = q.get("help") or ""
    if q["key"] == "spore_print" and not howto:
        howto = SPORE_PRINT_HOWTO
    later = ", ".join(_e(o["text"]) for o in questions[1:3])
    return (
        f'<section id="narrow" class="narrow" data-question="{_e(q["key"])}"><h3>Narrow it down</h3>{given}'
        f'<p class="question">{_e(q["text"])}</p>'
        + (f'<p class="howto">{_e(howto)}</p>' if howto else "")
        + f'<div class="options" role="group" aria-label="{_e(q["text"])}">{buttons}</div>'
        + (f'<p class="muted">Next: {later}</p>' if later else "")
        + "</section>"
    )


# ---------------------------------------------------------------- below the fold


def sources_line(sp: Species | None) -> str:
    """'Sources disagree — Wikipedia: choice, not recommended · original project's list: edible'."""
    if sp is None or not sp.sources_disagree:
        return ""
    words = " · ".join(f"{_e(src)}: {_e(word)}" for src, word in sp.source_words())
    return f'<div class="disagree"><b>Sources disagree</b> — {words}</div>'


def photos_html(name: str, refs: ReferencePhotos | None, exclude: str | None = None) -> str:
    """Up to 3 reference photos to compare (each enlarges), or a placeholder that says why."""
    photos = refs.photos(name, exclude) if refs else []
    if not photos:
        why = "No clear reference photo with an open licence yet" if refs else "Reference photos are not installed"
        return f'<div class="photos">{no_photo(why)}</div>'
    figures = "".join(
        f"<figure>{zoomable(p, name, refs)}<figcaption>{_credit_link(p)}</figcaption></figure>" for p in photos
    )
    return f'<div class="photos">{figures}</div>'


def card_html(
    rank: int, c: Mapping, refs: ReferencePhotos | None, catalog: Catalog | None, result: Mapping, exclude: str | None
) -> str:
    sp = _species(catalog, c["species"])
    common = c.get("common_name") or (sp.common_name if sp else "")
    looks = c.get("lookalikes") or []
    looks_html = ""
    if looks:  # each name and its badge kept on one line (a badge never sits beside the next name)
        items = ", ".join(f'<span class="look"><i>{_e(x["species"])}</i> {badge(x["edibility"])}</span>' for x in looks)
        looks_html = f'<div class="looks">Can be confused with: {items}</div>'
    width = max(0.0, min(1.0, float(c["probability"]))) * 100
    label = "" if result.get("below_floor") else f'<span class="rank">{rank}.</span>'
    return (
        f'<li class="card" data-species="{_e(c["species"])}">'
        f'<div class="card-body"><div class="name">{label}<i>{_e(c["species"])}</i></div>'
        + (f'<div class="common">{_e(common)}</div>' if common else "")
        + f'<div class="line"><span class="bar" aria-hidden="true"><span style="width:{width:.1f}%"></span></span>'
        f'<span class="prob">{pct(c["probability"])}</span>{badge(c["edibility"])}{_page_link(sp)}</div>'
        f"{sources_line(sp)}{looks_html}</div>"
        f"{photos_html(c['species'], refs, exclude)}</li>"
    )


def cards_html(
    result: Mapping, refs: ReferencePhotos | None = None, catalog: Catalog | None = None, exclude: str | None = None
) -> str:
    """The candidates after the top one (all of them when the photo is below the floor: "possible")."""
    cands = list(result.get("candidates") or [])
    if len(cands) < 2:
        return ""
    title = "Also possible (not ranked answers)" if result.get("below_floor") else "Other candidates"
    cards = "".join(card_html(i, c, refs, catalog, result, exclude) for i, c in enumerate(cands, 1) if i > 1)
    edible = any(c.get("edibility") in EDIBLE or _edible_lookalike(c) for c in cands[1:])
    note = f'<p class="muted" id="edible-footnote">{_e(EDIBLE_FOOTNOTE)}</p>' if edible else ""
    return f'<h3 class="section">{title}</h3>{note}<ol class="cards" id="candidates" aria-label="{title}">{cards}</ol>'


def _edible_lookalike(c: Mapping) -> bool:
    return any(x.get("edibility") in EDIBLE for x in c.get("lookalikes") or [])


def compare_html(
    result: Mapping, refs: ReferencePhotos | None = None, catalog: Catalog | None = None, exclude: str | None = None
) -> str:
    """The top candidate beside its dangerous lookalikes, photo next to photo."""
    cands = result.get("candidates") or []
    if not cands or catalog is None or catalog.resolve(cands[0]["species"]) is None:
        return ""
    top = catalog.get(cands[0]["species"])
    dangerous = sorted((s for s in catalog.lookalikes(top.name) if s.dangerous), key=lambda s: danger_rank(s.edibility))
    if not dangerous:
        return ""

    def fig(sp: Species, label: str) -> str:
        photo = refs.get(sp.name, exclude) if refs else None
        img = zoomable(photo, sp.name, refs) if photo and refs is not None else no_photo("No reference photo yet")
        credit = f'<div class="credit">{_credit_link(photo)}</div>' if photo else ""
        return (
            f'<figure data-species="{_e(sp.name)}">{img}<figcaption>{_e(label)} <i>{_e(sp.name)}</i> '
            f"{badge(sp.edibility)}{credit}</figcaption></figure>"
        )

    figures = fig(top, "Top candidate:") + "".join(fig(s, "Lookalike:") for s in dangerous)
    return (
        '<section id="lookalike-compare"><h3 class="section">Compare: the top candidate and its dangerous '
        f'lookalikes</h3><div class="compare">{figures}</div></section>'
    )


def _is_danger(w: Mapping) -> bool:
    return w.get("kind") == "toxic_candidate" or (w.get("kind") != "lookalike" and w.get("edibility") in DANGEROUS)


def details_html(result: Mapping) -> str:
    """Every warning (the dangers the red panel does not name first), genus, prediction set, model."""
    items = [f"<li>{_e(result.get('message', ''))}</li>"]
    others = unnamed_dangers(result)
    if others:
        items.append(
            f'<li id="other-dangers">Other dangerous species that are possible, less likely ({len(others)}): <ul>'
            + "".join(f'<li data-species="{_e(w["species"])}">{_e(w["message"])}</li>' for w in others)
            + "</ul></li>"
        )
    shown = {w["species"] for w in others}
    for w in result.get("warnings") or []:
        if w.get("species") in shown or w.get("kind") == "not_confident" or w["message"] == result.get("message"):
            continue
        if _is_danger(w) and w.get("species") in {d["species"] for d in result.get("danger_panel") or []}:
            items.append(f'<li class="named">{_e(w["message"])}</li>')
        else:
            items.append(f"<li>{_e(w['message'])}</li>")
    g = result.get("genus_answer")
    if g:
        items.append(f"<li>{pct(g['probability'])} of the probability is on the genus <i>{_e(g['genus'])}</i>.</li>")
    pset = result.get("prediction_set") or {}
    if pset.get("species"):
        names = ", ".join(f"<i>{_e(s)}</i>" for s in pset["species"][:SET_SHOWN])
        n = len(pset["species"])
        if n > SET_SHOWN:
            names += f" and {n - SET_SHOWN} more (in the full result)"
        if pset.get("coverage"):
            head = (
                f"The {n} species that, together, hold the right one about {pset['coverage']:.0%} of the time "
                "on photos from new photographers:"
            )
        else:
            head = f"The {n} species this model could not rule out:"
        items.append(f'<li id="prediction-set">{head} {names}</li>')
    model = result.get("model") or {}
    score = result.get("fungus_score")
    looks = "" if score is None else f" How much the photo looks like a fungus to the model: {score:.2f}."
    items.append(
        f"<li>Model <code>{_e(model.get('id'))}</code>, which knows {_e(model.get('num_species'))} species; "
        f"{_e(result.get('photos', 1))} photo(s).{_e(looks)}</li>"
    )
    return (
        '<details id="details"><summary>Details: every warning, the species not ruled out, the model</summary>'
        f"<ul>{''.join(items)}</ul></details>"
    )


def more_html(
    result: Mapping | None,
    refs: ReferencePhotos | None = None,
    catalog: Catalog | None = None,
    user_photo: UserPhoto | None = None,
) -> str:
    """Below the first screen: the other candidates, the lookalike comparison, the details."""
    if not result or not result.get("candidates"):
        return ""
    catalog = catalog if catalog is not None else default_catalog()
    exclude = user_photo.sha256 if user_photo else None
    body = cards_html(result, refs, catalog, exclude) + compare_html(result, refs, catalog, exclude)
    if refs is not None and not refs:
        body += f'<p class="muted" id="no-reference">Reference photos are not available here ({_e(refs.note)}).</p>'
    return f'<div id="more" data-state="answer">{body}{details_html(result)}</div>'


def answer_html(
    result: Mapping | None,
    refs: ReferencePhotos | None = None,
    catalog: Catalog | None = None,
    user_photo: UserPhoto | None = None,
) -> str:
    """The three parts in one string (the CLI-like whole, for tests and embedding)."""
    return (
        first_screen_html(result, refs, catalog, user_photo)
        + narrow_html(result)
        + more_html(result, refs, catalog, user_photo)
    )


def message_html(text: str, kind: str = "placeholder") -> str:
    """The answer panel without an answer: placeholder, pending, uploading or error (kind)."""
    if kind == "error":
        return (
            '<div id="answer" data-state="error"><div class="error-box" id="answer-error" role="alert">'
            f"{_e(text)}</div></div>"
        )
    return f'<div id="answer" data-state="{_e(kind)}"><div class="{_e(kind)}">{_e(text)}</div></div>'


render = answer_html
