"""One calibration for a model: temperature and every decision threshold, fitted in one place.

``calibrate(logits, y, labels, fungus=...)`` is what training (``engine.loop.finish``), the embedded
build (``engine.candidates``) and trust measurement (``engine.trust``) call on held-out photos; the
result travels with the model (``Calibration.apply`` -> ``core.models.save_calibration``, the
model's ``config.json``) and ``core.safety.Thresholds`` reads it back when serving.

* temperature: minimises the held-out NLL (``scipy.optimize.minimize_scalar`` on log T);
* fungus gate: the score below which ``GATE_TARGET_FRR`` of the held-out mushroom photos fall;
* confident: the lowest max-probability whose answered photos reach ``CONFIDENT_TARGET`` top-1
  (1.0, i.e. never confident, when no threshold does);
* genus: the lowest genus mass whose genus answers (of photos that are not confident) reach
  ``GENUS_TARGET`` genus accuracy (1.0: off);
* conformal: the split-conformal LAC quantile for ``coverage``;
* floor: the lowest top probability whose photos reach ``FLOOR_TARGET`` top-1; below it a photo is
  "not enough" and its candidates are shown as possible, not as ranked answers (1.0: always);
* danger share (with a catalog): the probability at which a dangerous species enters the red panel
  (``core.danger``), the one that best separates toxic specimens (their species or genus named) from
  edible ones (a red panel raised): the largest named-rate minus panel-rate, species-balanced (ties:
  the smallest share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mushroom_id.core.catalog import DANGEROUS, EDIBLE, Catalog
from mushroom_id.core.danger import danger_panel
from mushroom_id.core.safety import Thresholds, answer, genus_of, genus_probabilities
from mushroom_id.engine.metrics import nll, softmax

GATE_TARGET_FRR = 0.02
CONFIDENT_TARGET = 0.85  # "confident" must mean >= 85% top-1 on photos from unseen sources
GENUS_TARGET = 0.85
# The stated coverage of the prediction set: a product choice, reported at every level in trust.json.
# On photos from unseen sources the embedded model's 90% set holds ~355 of its 565 species (median): true,
# and useless to a person, with ~90 dangerous members each raising a warning. The 50% set (~11 species)
# measured 46% on cross-source test, outside +-3 points; 70% (~58 species) held (71.6%). A stronger
# model earns a higher target with smaller sets.
COVERAGE = 0.70
MIN_ANSWERED = 10  # a confidence threshold must keep at least this many held-out photos answered
MIN_GENUS_ANSWERED = 5
# Below the floor the top guess is right less than one time in FLOOR_TARGET^-1: "possible", not an answer.
FLOOR_TARGET = 1 / 3
DANGER_SHARES = (0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)  # 1.0: only top guess and lookalikes


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)`` (T in [0.05, 20]; 1.0 without data)."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    if len(y) == 0:
        return 1.0
    fit = minimize_scalar(
        lambda log_t: nll(softmax(logits, float(np.exp(log_t))), y),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(fit.x))


def fit_temperature_wide(logits: np.ndarray, y: np.ndarray) -> float:
    """:func:`fit_temperature` without its upper bound: logits on a large scale (a linear head plus class-mean
    cosines times a blend weight of hundreds) are divided by 20 until their temperature is inside the range."""
    logits = np.asarray(logits, dtype=np.float64)
    scale = 1.0
    t = fit_temperature(logits, y)
    while t > 19.9 and scale < 1e6:
        scale *= 20.0
        t = fit_temperature(logits / scale, y)
    return t * scale


def conformal_qhat(probs: np.ndarray, y: np.ndarray, coverage: float = 0.9) -> float:
    """Split-conformal LAC quantile of the scores 1 - p(true class) on calibration data."""
    n = len(y)
    if n == 0:
        raise ValueError("conformal calibration needs at least one example")
    scores = np.sort(1.0 - probs[np.arange(n), np.asarray(y)])
    k = int(np.ceil((n + 1) * coverage))  # the k-th smallest score (finite-sample corrected)
    return float(scores[min(k, n) - 1]) if k <= n else 1.0


def lowest_threshold(scores: np.ndarray, correct: np.ndarray, target: float, min_answered: int = MIN_ANSWERED):
    """Lowest threshold t (among the observed scores) with accuracy >= target on {score >= t}.

    Returns (t, answered fraction, accuracy), or (None, 0, nan) when no threshold reaches it.
    """
    scores = np.asarray(scores, float)
    order = np.argsort(-scores)
    s, c = scores[order], np.asarray(correct, float)[order]
    acc = np.cumsum(c) / np.arange(1, len(c) + 1)
    # a cut may only fall between distinct scores (ties are answered together)
    cut = np.append(s[1:] < s[:-1], True)
    ok = np.flatnonzero((np.arange(1, len(s) + 1) >= min_answered) & (acc >= target) & cut)
    if not len(ok):
        return None, 0.0, float("nan")
    i = int(ok.max())
    return float(s[i]), (i + 1) / len(s), float(acc[i])


def species_mean(hits, y) -> float | None:
    """The mean over species of each species' mean (species-balanced)."""
    hits, y = np.asarray(hits, dtype=float), np.asarray(y)
    return float(np.mean([hits[y == c].mean() for c in np.unique(y)])) if len(y) else None


def danger_outcomes(
    probs: np.ndarray, y: np.ndarray, labels: Sequence[str], catalog: Catalog, thresholds: Thresholds, shares=None
) -> dict:
    """Per photo, for the red panel at each share and for the old red box (every ``toxic_candidate``
    warning): is a toxic specimen's own species (or one of its genus) named, does an edible specimen
    get a red panel. ``shares`` default: ``DANGER_SHARES`` and the thresholds' own."""
    shares = sorted(set(shares or DANGER_SHARES) | {thresholds.danger_share})
    model = {"id": "calibration", "num_species": len(labels)}
    index = {n: i for i, n in enumerate(labels)}
    out = {"box": {"named": [], "panel": []}, "warned": []}
    out |= {s: {"named": [], "panel": []} for s in shares}
    for p in probs:
        r = answer(p, None, labels, catalog, thresholds, model, index=index)
        toxic = [w["species"] for w in r["warnings"] if w.get("kind") == "toxic_candidate"]
        out["box"]["panel"].append(bool(toxic))
        out["box"]["named"].append(toxic)
        for s in shares:
            panel = danger_panel(r, s)
            out[s]["panel"].append(bool(panel))
            out[s]["named"].append([d["species"] for d in panel])
        out["warned"].append(toxic)  # shown in the red panel or, neutrally, in the details (core.danger)
    return out


def danger_rates(outcome: dict, y: np.ndarray, labels: Sequence[str], catalog: Catalog) -> dict:
    """Species-balanced: toxic specimens whose species (or genus) is named; edible specimens with a panel."""
    dangerous, edible = catalog.mask(labels, DANGEROUS), catalog.mask(labels, EDIBLE)
    y = np.asarray(y)
    toxic_idx, edible_idx = np.flatnonzero(dangerous[y]), np.flatnonzero(edible[y])

    def named(i: int) -> bool:
        own = labels[y[i]]
        return any(n == own or genus_of(n) == genus_of(own) for n in outcome["named"][i])

    return {
        "toxic_named": species_mean([named(i) for i in toxic_idx], y[toxic_idx]),
        "edible_with_panel": species_mean([outcome["panel"][i] for i in edible_idx], y[edible_idx]),
        "toxic_specimens": int(len(toxic_idx)),
        "edible_specimens": int(len(edible_idx)),
    }


def fit_danger_share(probs, y, labels, catalog: Catalog, thresholds: Thresholds) -> tuple[float, dict]:
    """The share with the largest toxic-named rate minus edible-panel rate; among equal ones the smallest
    (a dangerous species that holds that much is always named in red)."""
    outcomes = danger_outcomes(probs, y, labels, catalog, thresholds)
    rates = {s: danger_rates(outcomes[s], y, labels, catalog) for s in DANGER_SHARES}
    score = {s: round((rates[s]["toxic_named"] or 0) - (rates[s]["edible_with_panel"] or 0), 9) for s in DANGER_SHARES}
    best = min(s for s in DANGER_SHARES if score[s] == max(score.values()))  # ties: the smaller, safer share
    return best, {str(s): r for s, r in rates.items()}


def genus_stats(probs: np.ndarray, y: np.ndarray, labels: Sequence[str], confident: float):
    """(genus mass of the top genus, is that genus right) for every photo that is not confident."""
    masses, right = [], []
    for i in np.flatnonzero(probs.max(1) < confident):
        gp = genus_probabilities(probs[i], labels)
        g = max(gp, key=gp.get)
        masses.append(gp[g])
        right.append(g == genus_of(labels[y[i]]))
    return np.array(masses, dtype=float), np.array(right, dtype=bool)


@dataclass(frozen=True)
class Calibration:
    """Temperature + thresholds of one model, and how they were fitted (``fit``: held-out numbers)."""

    temperature: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    fit: dict = field(default_factory=dict, compare=False)

    def config(self) -> dict:
        """The ``config.json`` keys this calibration sets."""
        return {"temperature": self.temperature, "thresholds": asdict(self.thresholds)}

    def apply(self, model_dir: str | Path) -> Path:
        """Store it in a saved model's ``config.json`` (atomically; through ``core.models``)."""
        from mushroom_id.core.models import save_calibration

        return save_calibration(model_dir, self.config())

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature) if len(logits) else np.asarray(logits, float)


def calibrate(
    logits: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    fungus: np.ndarray | None = None,
    coverage: float = COVERAGE,
    confident_target: float = CONFIDENT_TARGET,
    genus_target: float = GENUS_TARGET,
    catalog: Catalog | None = None,
) -> Calibration:
    """Fit temperature and thresholds on held-out photos: raw ``logits`` (N, C), labels ``y`` (N,),
    the fungus gate's scores (N,) when the gate ran (else the gate keeps its default threshold); with a
    ``catalog`` the red panel's danger share too (else it keeps its default)."""
    y = np.asarray(y)
    temperature = fit_temperature(logits, y)
    if not len(y):
        return Calibration(temperature, Thresholds(conformal_coverage=coverage), {"photos": 0})
    probs = softmax(logits, temperature)
    correct = probs.argmax(1) == y
    conf_t, conf_cov, conf_acc = lowest_threshold(probs.max(1), correct, confident_target)
    conf_t = 1.0 if conf_t is None else conf_t
    masses, right = genus_stats(probs, y, labels, conf_t)
    genus_t, g_cov, g_acc = (
        lowest_threshold(masses, right, genus_target, MIN_GENUS_ANSWERED) if len(masses) else (None, 0.0, float("nan"))
    )
    genus_t = 1.0 if genus_t is None else genus_t
    gate_t = float(np.quantile(fungus, GATE_TARGET_FRR)) if fungus is not None and len(fungus) else Thresholds.fungus
    floor_t, floor_cov, floor_acc = lowest_threshold(probs.max(1), correct, FLOOR_TARGET)
    floor_t = 1.0 if floor_t is None else floor_t
    thresholds = Thresholds(
        confident=conf_t,
        genus=genus_t,
        conformal_qhat=conformal_qhat(probs, y, coverage),
        conformal_coverage=coverage,
        fungus=gate_t,
        floor=floor_t,
    )
    share_fit = None
    if catalog is not None:
        share, share_fit = fit_danger_share(probs, y, labels, catalog, thresholds)
        thresholds = replace(thresholds, danger_share=share)
    fit = {
        "photos": int(len(y)),
        "confident": {"answered": conf_cov, "accuracy": conf_acc, "target": confident_target},
        "genus": {
            "answered_of_not_confident": g_cov,
            "genus_accuracy": g_acc,
            "genus_accuracy_of_all_not_confident": float(right.mean()) if len(right) else None,
            "target": genus_target,
        },
        "fungus_gate": {"target_false_reject": GATE_TARGET_FRR, "fitted": fungus is not None},
        "floor": {"target": FLOOR_TARGET, "above_floor": floor_cov, "accuracy_above": floor_acc},
        "danger_share": share_fit,
    }
    return Calibration(temperature, thresholds, fit)
