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

* after field answers, it is guess 2 (``ANSWERED_GUESSES``): "guess 2 after your answers". And after
  answers a guess's dangerous lookalikes are named only when that guess holds at least
  ``ANSWERED_LOOKALIKE_SHARE`` of the answered probability (a guess the answers leave weak says little
  about what the mushroom looks like); the others stay in the details. Both are fitted on cross-source
  validation with the app's question flow (``python -m mushroom_id.engine.danger_eval --fit``).

* the field answers fit a dangerous group's profile (:data:`DANGER_PROFILES`, from
  ``mushroom_id/data/danger_profiles.csv``: conditions on the question answers, each with why and a
  source): "your answers fit the deadly Amanitas: ...", whatever the photo's probability. The group is
  named by its most probable member.

A danger must be credible: a species whose only danger source is the original project's binary "toxic"
(= not edible; ``weak``) enters the panel only as the top guess, and never ahead of a species a specific
source (Wikipedia, Wild Food UK, the curated confusions) calls dangerous; it stays in the warnings.

At most ``PANEL_MAX`` names: the top guess, then the groups the answers fit, then the most dangerous
(deadly, poisonous, psychoactive), then those with more reasons, then the most probable. When none
qualifies the result shows at most one neutral line (:func:`mushroom_id.core.answer_text.caution_line`).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mushroom_id.core import paths
from mushroom_id.core.catalog import DANGEROUS
from mushroom_id.core.result import DangerItem
from mushroom_id.core.words import NEUTRAL_LINE, percent

__all__ = ["NEUTRAL_LINE", "DangerProfile", "danger_panel", "danger_profiles", "profile_matches", "unnamed_dangers"]

PANEL_MAX = 3  # names in the red panel
LOOKALIKE_OF_TOP = 3  # dangerous lookalikes of the top N candidates count
# After field answers (fitted on cross-source validation with the app's question flow, truthful answers:
# the largest toxic-named minus edible-panel rate; ``python -m mushroom_id.engine.danger_eval --fit``):
ANSWERED_GUESSES = 2  # a dangerous candidate among the first N guesses after the answers is named
ANSWERED_LOOKALIKE_SHARE = 0.4  # a guess's lookalikes are named when it holds this much after the answers
_DANGER_ORDER = ("deadly", "poisonous", "psychoactive")
PROFILES_CSV = paths.DATA_DIR / "danger_profiles.csv"
PROFILE_COLUMNS = ("profile", "group", "members", "conditions", "needs", "min_answers", "why", "source", "url")


@dataclass(frozen=True)
class DangerProfile:
    """What a dangerous group looks like to a person with the mushroom in hand, as conditions on the
    field questions' answers (question key -> the option values that fit).

    The profile fits a person's answers when no answered condition contradicts it, every key in
    ``needs`` is answered, and at least ``min_answers`` of its conditions are answered. Answers to other
    questions (or questions added later) are ignored: they can neither fit nor contradict it."""

    key: str
    group: str  # "the deadly Amanitas"
    members: tuple[str, ...]  # catalog species, most dangerous first
    conditions: Mapping[str, frozenset[str]]
    needs: tuple[str, ...]
    min_answers: int
    why: str
    source: str
    url: str = ""

    def fits(self, answers: Mapping[str, str]) -> list[str]:
        """The keys whose answers fit (in the profile's order); [] when the profile does not fit."""
        answered = [k for k in self.conditions if answers.get(k)]
        if any(answers[k] not in self.conditions[k] for k in answered):
            return []
        if any(k not in answered for k in self.needs) or len(answered) < self.min_answers:
            return []
        return answered


def _conditions(text: str) -> dict[str, frozenset[str]]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, _, values = part.partition("=")
        out[key.strip()] = frozenset(v.strip() for v in values.split("|") if v.strip())
    return out


def read_profiles(path: str | Path | None = None) -> tuple[DangerProfile, ...]:
    """The danger profiles table; every row needs a group, members, conditions, why and a source."""
    with open(Path(path) if path is not None else PROFILES_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    profiles = []
    for row in rows:
        missing = [c for c in PROFILE_COLUMNS if c != "url" and not (row.get(c) or "").strip()]
        if missing:
            raise ValueError(f"danger profile {row.get('profile')!r} lacks {missing}")
        profiles.append(
            DangerProfile(
                key=row["profile"].strip(),
                group=row["group"].strip(),
                members=tuple(m.strip() for m in row["members"].split(";") if m.strip()),
                conditions=_conditions(row["conditions"]),
                needs=tuple(k.strip() for k in row["needs"].split(";") if k.strip()),
                min_answers=int(row["min_answers"]),
                why=row["why"].strip(),
                source=row["source"].strip(),
                url=(row.get("url") or "").strip(),
            )
        )
    return tuple(profiles)


@functools.cache
def danger_profiles() -> tuple[DangerProfile, ...]:
    return read_profiles()


def profile_matches(
    answers: Mapping[str, str] | None, profiles: Sequence[DangerProfile] | None = None
) -> list[tuple[DangerProfile, list[str]]]:
    """[(profile, the answered keys that fit it), ...] for every profile the answers fit."""
    if not answers:
        return []
    found = []
    for profile in danger_profiles() if profiles is None else profiles:
        keys = profile.fits(answers)
        if keys:
            found.append((profile, keys))
    return found


def danger_panel(result: Mapping, share: float, limit: int = PANEL_MAX) -> list[DangerItem]:
    """The red panel's species (at most ``limit``), each with why; [] when no danger matters.

    ``share`` >= 1 turns the probability rule off (only the top guess and lookalikes count). A warning
    with ``original_list_only`` is a danger only the original list's binary "toxic" asserts (named only
    as the top guess); ``result["danger_profiles"]`` are the groups the answers fit, each
    ``{"species", "edibility", "probability", "reason", "check"}`` (:func:`mushroom_id.core.safety.answer`).
    """
    weak = {w["species"] for w in result.get("warnings") or [] if w.get("original_list_only")}
    answered = any(v for v in (result.get("answers") or {}).values())
    profiles: Sequence[Mapping] = result.get("danger_profiles") or []
    candidates: Sequence[Mapping] = result.get("candidates") or []
    if not candidates:
        return []
    probability = {c["species"]: float(c["probability"]) for c in candidates}
    for w in result.get("warnings") or []:
        if w.get("kind") == "toxic_candidate" and w.get("probability") is not None:
            probability.setdefault(w["species"], float(w["probability"]))
    edibility: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    checks: dict[str, str] = {}

    def add(name: str, status: str, why: str) -> None:
        if name in weak and why != "top guess" and name not in reasons:
            return  # "toxic" on the original list alone: in the details, not in red
        edibility.setdefault(name, status)
        reasons.setdefault(name, [])
        if why not in reasons[name]:
            reasons[name].append(why)

    top = candidates[0]
    if top.get("edibility") in DANGEROUS:
        add(top["species"], top["edibility"], "top guess")
    fitted = set()
    for item in profiles:
        if item["probability"] is not None:
            probability.setdefault(item["species"], float(item["probability"]))
        if item["species"] in fitted:
            continue  # two groups the answers fit name the same species: the first says why
        if item["species"] in reasons:
            reasons[item["species"]].insert(0, item["reason"])
        else:
            add(item["species"], item["edibility"], item["reason"])
        fitted.add(item["species"])
        if item.get("check"):
            checks.setdefault(item["species"], item["check"])
    for w in result.get("warnings") or []:
        p = w.get("probability")
        if w.get("kind") == "toxic_candidate" and w.get("edibility") in DANGEROUS and p is not None:
            if share < 1.0 and p >= share and w["species"] not in reasons:  # the top guess says enough
                add(w["species"], w["edibility"], percent(p))
    if answered:  # the answers re-ranked the candidates: a dangerous one close to the top is named
        for rank, c in enumerate(candidates[1:ANSWERED_GUESSES], 2):
            if c.get("edibility") in DANGEROUS and c["species"] not in reasons:
                add(c["species"], c["edibility"], f"guess {rank} after your answers")
    for c in candidates[1:]:  # a dangerous candidate below the top one, at or above the share
        if (
            c.get("edibility") in DANGEROUS
            and share < 1.0
            and c["probability"] >= share
            and c["species"] not in reasons
        ):
            add(c["species"], c["edibility"], percent(c["probability"]))
    for rank, c in enumerate(candidates[:LOOKALIKE_OF_TOP], 1):
        if answered and c["probability"] < ANSWERED_LOOKALIKE_SHARE:
            continue  # after answers a guess this weak says little about what it looks like: in the details
        if rank > 1 and not (share < 1.0 and c["probability"] >= share):
            continue  # a lower guess's lookalikes count once that guess holds the share itself
        for look in c.get("lookalikes") or []:
            if look.get("ruled_out_by"):
                continue  # an answer contradicts it: in the details, not in red
            if look.get("edibility") in DANGEROUS and look["species"] != c["species"]:
                why = "looks like your top guess" if rank == 1 else f"looks like {c['species']} (guess {rank})"
                add(look["species"], look["edibility"], why)
                curated = (look.get("reason") or "").removeprefix("known confusion: ")
                if rank == 1 and look["species"] in reasons and curated and not curated.startswith("named in"):
                    checks.setdefault(look["species"], curated)

    def order(name: str) -> tuple:
        level = _DANGER_ORDER.index(edibility[name]) if edibility[name] in _DANGER_ORDER else 3
        # the top guess first, then the most dangerous, then the one with more reasons (a lookalike that
        # also holds the share), the most probable, and the name (a stable order for ties)
        return (
            0 if "top guess" in reasons[name] and name not in weak else 1,
            0 if name in fitted else 1,
            1 if name in weak else 0,  # a specific source's danger before the original list's "toxic"
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
            **({"check": checks[n]} if n in checks else {}),
        }
        for n in names
    ]


def unnamed_dangers(result: Mapping) -> list[Mapping]:
    """The ``toxic_candidate`` warnings the red panel does not name: shown neutrally, never dropped."""
    named = {d["species"] for d in result.get("danger_panel") or []}
    return [w for w in result.get("warnings") or [] if w.get("kind") == "toxic_candidate" and w["species"] not in named]
