"""Safety decisions as pure functions: prediction sets, genus fallback, confidence, warnings.

Nothing here says a mushroom is safe to eat. Edibility always comes from the catalog;
an unknown status is reported as unknown and treated as not known to be edible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .catalog import DANGEROUS, Catalog

DISCLAIMER = (
    "This is an automated guess from a photo, not an identification. Never eat a wild mushroom "
    "based on an app: many deadly species look like edible ones. Ask a local mycologist or mushroom "
    "inspection service, and if someone may have eaten a poisonous mushroom, call a poison control "
    "centre or emergency services now."
)
BANNED_PHRASES = ("safe to eat",)

EDIBILITY_TEXT = {
    "deadly": "DEADLY POISONOUS",
    "poisonous": "POISONOUS",
    "psychoactive": "psychoactive / toxic",
    "inedible": "inedible",
    "unknown": "edibility unknown",
    "edible": "edible (per sources, if correctly identified and cooked)",
    "choice": "edible, choice (per sources, if correctly identified and cooked)",
}


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; fitted values travel with the model in its config.json."""

    confident: float = 0.5  # top-1 probability needed to name a species with confidence
    genus: float = 0.6  # probability mass one genus needs for a genus-level answer
    conformal_qhat: float | None = None  # LAC score quantile: set = {p >= 1 - qhat}
    conformal_coverage: float | None = None  # the coverage the quantile was calibrated for
    fungus: float = 0.2  # fungus-gate score below which the photo is rejected

    @classmethod
    def from_config(cls, config: dict) -> Thresholds:
        t = config.get("thresholds") or {}
        known = {k: t[k] for k in cls.__dataclass_fields__ if k in t}
        return cls(**known)


def genus_of(name: str) -> str:
    return name.split(" ", 1)[0]


def prediction_set(probs: np.ndarray, qhat: float | None, max_size: int | None = None) -> list[int]:
    """Indices with probability >= 1 - qhat (split-conformal LAC), most probable first.

    The top class is always included, so a set is never empty. Without a calibrated
    ``qhat`` the set is just the top class.
    """
    order = np.argsort(-probs)
    if qhat is None:
        return [int(order[0])]
    chosen = [int(i) for i in order if probs[i] >= 1.0 - qhat] or [int(order[0])]
    return chosen[:max_size] if max_size else chosen


def conformal_qhat(probs: np.ndarray, y: np.ndarray, coverage: float = 0.9) -> float:
    """Split-conformal LAC quantile of the scores 1 - p(true class) on calibration data."""
    n = len(y)
    if n == 0:
        raise ValueError("conformal calibration needs at least one example")
    scores = np.sort(1.0 - probs[np.arange(n), np.asarray(y)])
    k = int(np.ceil((n + 1) * coverage))  # the k-th smallest score (finite-sample corrected)
    return float(scores[min(k, n) - 1]) if k <= n else 1.0


def genus_probabilities(probs: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p, name in zip(probs, labels, strict=True):
        g = genus_of(name)
        out[g] = out.get(g, 0.0) + float(p)
    return out


def genus_answer(probs: np.ndarray, labels: Sequence[str], thresholds: Thresholds) -> dict | None:
    """A genus-level answer when no species is clear but one genus holds most of the mass."""
    if float(probs.max()) >= thresholds.confident:
        return None
    genus, mass = max(genus_probabilities(probs, labels).items(), key=lambda kv: kv[1])
    if mass < thresholds.genus:
        return None
    return {"genus": genus, "name": f"{genus} sp.", "probability": round(mass, 4)}


def combine_observation(log_probs: np.ndarray) -> np.ndarray:
    """Combine several photos of one specimen: mean of log-probabilities, renormalised.

    (A product of experts: a species must fit every photo. Chosen over averaging
    probabilities by measurement; see README.)
    """
    mean = np.asarray(log_probs, dtype=np.float64).mean(axis=0)
    mean -= mean.max()
    p = np.exp(mean)
    return p / p.sum()


def _percent(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "<1%"


def species_warnings(
    names: Sequence[str],
    catalog: Catalog,
    top_name: str | None = None,
    probabilities: dict[str, float] | None = None,
) -> list[dict]:
    """Warnings for dangerous candidates, lookalikes of the top candidate, unknown edibility.

    With ``probabilities`` each toxic warning states the candidate's probability, so a
    deadly species at 40% reads differently from one kept in the set at 0.2%.
    """
    warnings: list[dict] = []
    seen = set()
    for name in names:
        status = catalog.edibility(name)
        if status in DANGEROUS and name not in seen:
            seen.add(name)
            p = None if probabilities is None else probabilities.get(name)
            share = "" if p is None else f", {_percent(p)} probability"
            warnings.append(
                {
                    "kind": "toxic_candidate",
                    "species": name,
                    "edibility": status,
                    "probability": p,
                    "message": f"{name} ({EDIBILITY_TEXT[status]}{share}) is among the plausible species.",
                }
            )
    if top_name is not None and top_name in catalog:
        for look in catalog.lookalikes(top_name):
            warnings.append(
                {
                    "kind": "lookalike",
                    "species": look.name,
                    "edibility": look.edibility,
                    "message": f"{top_name} can be confused with {look.name} ({EDIBILITY_TEXT[look.edibility]}).",
                }
            )
    if top_name is not None and catalog.edibility(top_name) == "unknown":
        # also for a model label that is not in the catalog (a model trained on other names)
        why = "no source we use knows it" if top_name in catalog else "it is not in our species catalog"
        warnings.append(
            {
                "kind": "unknown_edibility",
                "species": top_name,
                "edibility": "unknown",
                "message": f"Edibility unknown for {top_name}: {why}.",
            }
        )
    return warnings
