"""Danger that matters: which dangerous species a result shows in red, each with its reason.

A pure function of the :class:`~mushroom_id.core.result.Result` (no model, no I/O). The full warnings
list stays in the result: a dangerous species this rule does not name in red is still listed, in a
neutral form (the app's details fold, the CLI's "also possible" line), never dropped.

The red panel names a dangerous (deadly, poisonous, psychoactive) species when

* it is the top guess ("top guess");
* it holds at least ``share`` of the probability (fitted on cross-source validation, stored with the
  model's thresholds as ``danger_share``): "12%";
* it is a known dangerous lookalike (catalog) of the top guess, or of guess 2 or 3 when that guess
  holds the share itself: "looks like your top guess" / "looks like Agaricus arvensis (guess 2)".

At most ``PANEL_MAX`` names: the top guess, then the most dangerous (deadly, poisonous, psychoactive),
then those with more reasons, then the most probable. When none qualifies the result shows one
neutral line (:data:`NEUTRAL_LINE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mushroom_id.core.catalog import DANGEROUS
from mushroom_id.core.result import DangerItem

PANEL_MAX = 3  # names in the red panel
LOOKALIKE_OF_TOP = 3  # dangerous lookalikes of the top N candidates count
NEUTRAL_LINE = "Deadly species can look like this one: never eat a wild mushroom on an app's word."
_DANGER_ORDER = ("deadly", "poisonous", "psychoactive")


def _percent(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def danger_panel(result: Mapping, share: float, limit: int = PANEL_MAX) -> list[DangerItem]:
    """The red panel's species (at most ``limit``), each with why; [] when no danger matters.

    ``share`` >= 1 turns the probability rule off (only the top guess and lookalikes count).
    """
    candidates: Sequence[Mapping] = result.get("candidates") or []
    if not candidates:
        return []
    probability = {c["species"]: float(c["probability"]) for c in candidates}
    for w in result.get("warnings") or []:
        if w.get("kind") == "toxic_candidate" and w.get("probability") is not None:
            probability.setdefault(w["species"], float(w["probability"]))
    edibility: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}

    def add(name: str, status: str, why: str) -> None:
        edibility.setdefault(name, status)
        reasons.setdefault(name, [])
        if why not in reasons[name]:
            reasons[name].append(why)

    top = candidates[0]
    if top.get("edibility") in DANGEROUS:
        add(top["species"], top["edibility"], "top guess")
    for w in result.get("warnings") or []:
        p = w.get("probability")
        if w.get("kind") == "toxic_candidate" and w.get("edibility") in DANGEROUS and p is not None:
            if share < 1.0 and p >= share and w["species"] not in reasons:  # the top guess says enough
                add(w["species"], w["edibility"], _percent(p))
    for c in candidates[1:]:  # a dangerous candidate below the top one, at or above the share
        if (
            c.get("edibility") in DANGEROUS
            and share < 1.0
            and c["probability"] >= share
            and c["species"] not in reasons
        ):
            add(c["species"], c["edibility"], _percent(c["probability"]))
    for rank, c in enumerate(candidates[:LOOKALIKE_OF_TOP], 1):
        if rank > 1 and not (share < 1.0 and c["probability"] >= share):
            continue  # a lower guess's lookalikes count once that guess holds the share itself
        for look in c.get("lookalikes") or []:
            if look.get("edibility") in DANGEROUS and look["species"] != c["species"]:
                why = "looks like your top guess" if rank == 1 else f"looks like {c['species']} (guess {rank})"
                add(look["species"], look["edibility"], why)

    def order(name: str) -> tuple:
        level = _DANGER_ORDER.index(edibility[name]) if edibility[name] in _DANGER_ORDER else 3
        # the top guess first, then the most dangerous, then the one with more reasons (a lookalike that
        # also holds the share), the most probable, and the name (a stable order for ties)
        return (
            0 if "top guess" in reasons[name] else 1,
            level,
            -len(reasons[name]),
            -probability.get(name, -1.0),
            name,
        )

    names = sorted(reasons, key=order)[:limit]
    return [
        {
            "species": n,
            "edibility": edibility[n],
            "probability": round(probability[n], 4) if n in probability else None,
            "reason": "; ".join(reasons[n]),
        }
        for n in names
    ]


def unnamed_dangers(result: Mapping) -> list[Mapping]:
    """The ``toxic_candidate`` warnings the red panel does not name: shown neutrally, never dropped."""
    named = {d["species"] for d in result.get("danger_panel") or []}
    return [w for w in result.get("warnings") or [] if w.get("kind") == "toxic_candidate" and w["species"] not in named]
