"""The answer-first structure in words, shared by the app (``serving.ui.render``) and the CLI.

One clear name first (with what the model can honestly say about it), then ONE caution: the red panel
(:func:`mushroom_id.core.danger.danger_panel`) or the neutral line, then the next field question, then
the other candidates; every other warning stays in the result (the CLI names how many, ``--json`` has
them all). Pure functions of the Result.
"""

from __future__ import annotations

from collections.abc import Mapping

from mushroom_id.core.danger import unnamed_dangers
from mushroom_id.core.words import EDIBLE_NOTE, NEUTRAL_LINE, SHORT_EDIBILITY, percent

NO_SINGLE_SPECIES = "No single species is clear"


def genus_words(g: Mapping) -> str:
    """The genus answer in one phrase, the same in the headline, the message and the details."""
    return f"{NO_SINGLE_SPECIES}: most likely a species of {g['genus']} ({percent(g['probability'])} together)"


def caution_line(result: Mapping) -> str:
    """The neutral line when no red panel is shown and the top candidate is called edible; else ""."""
    cands = result.get("candidates") or []
    if result.get("danger_panel") or not cands or cands[0].get("edibility") not in ("edible", "choice"):
        return ""
    return NEUTRAL_LINE


def status(result: Mapping) -> tuple[str, str]:
    """(a status key, the words above the top name): confident / genus / possible / guess."""
    g = result.get("genus_answer")
    if result.get("confident"):
        return "confident", "Most likely"
    if result.get("below_floor"):
        if g:
            return "genus", f"The photo is not enough for a species: most likely a species of {g['genus']}, such as"
        return "possible", "The photo is not enough to name it. Possible:"
    if g:
        return "genus", f"{genus_words(g)}, such as"
    return "guess", "Best guess (not sure):"


def text_lines(result: Mapping) -> list[str]:
    """The answer as short lines of plain text (no nested brackets, one warning line per danger)."""
    from mushroom_id.core.questions import describe

    if not result.get("candidates"):
        return [result.get("message", ""), result.get("disclaimer", "")]
    top = result["candidates"][0]
    _, words = status(result)
    common = f" ({top['common_name']})" if top.get("common_name") else ""
    share = "" if result.get("below_floor") else f" {percent(top['probability'])},"
    lines = [f"{words} {top['species']}{common} —{share} {SHORT_EDIBILITY.get(top['edibility'], 'unknown')}"]
    panel = result.get("danger_panel") or []
    if panel:
        lines.append("DANGER:")
        lines += [f"  {d['species']} ({SHORT_EDIBILITY[d['edibility']]}): {d['reason']}" for d in panel]
    elif caution_line(result):
        lines.append(caution_line(result))
    questions = result.get("questions") or []
    if questions:
        q = questions[0]
        options = " | ".join(f"{o['value']} (keeps {o.get('keeps', '?')})" for o in q.get("options") or [])
        lines.append(f"Narrow it down: {q['text']} {options}")
        if q.get("help"):
            lines.append(f"  {q['help']}")
        lines.append(f"  answer with --answer {q['key']}=VALUE")
    if result.get("answers"):
        lines.append("Your answers: " + ", ".join(f"{k}={v} ({describe(k, v)})" for k, v in result["answers"].items()))
    others = result["candidates"][1:]
    if others:
        label = "Also possible" if result.get("below_floor") else "Other candidates"
        lines.append(
            f"{label}: "
            + "; ".join(f"{c['species']} {percent(c['probability'])} {SHORT_EDIBILITY[c['edibility']]}" for c in others)
        )
    hidden = unnamed_dangers(result)
    if hidden:
        lines.append(f"{len(hidden)} more dangerous species are possible but less likely (all in --json).")
    if any(c["edibility"] in ("edible", "choice") for c in result["candidates"]):
        lines.append(EDIBLE_NOTE)
    lines.append(result.get("disclaimer", ""))
    return lines
