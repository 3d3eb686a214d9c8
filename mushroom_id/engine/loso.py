"""Leave-one-source-out cross-validation: every multi-source photo predicted by a head that never saw its source.

    python -m mushroom_id.engine.loso [--out reports]          # ~10 min on 2 cores once features are cached

The cross-source test has ~215 photos: too few to rank heads or fit the field-answer settings. Here every
photo of a species with photos from two or more sources (iNaturalist, Commons, Kaggle sets, web pages, ...)
is predicted once, by heads fitted on frozen features of all the other sources' photos (near-duplicate
groups of the held-out photos left out of training too). Heads compared: the shipped one (frozen Lite1 +
linear), Lite1 class-mean, Lite0 class-mean (the floor). One temperature per head is fitted on the pooled
out-of-fold logits. Then, on these predictions:

- field answers: the mismatch weight and the question strategy (``engine.field_eval``), exact and noisy;
- trait heads: linear heads on the same frozen features predicting each trait from the photo (labels
  propagated from species' traits), used as soft evidence when a question is not answered. Kept only if
  they raise top-1 + top-5 without raising the ECE.

Spread: per held-out source, and a bootstrap over species (95% interval of the species-balanced top-5).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

import numpy as np
from tqdm import tqdm

from mushroom_id.core.questions import QUESTIONS, FieldEvidence
from mushroom_id.engine.calibration import fit_temperature
from mushroom_id.engine.evaluation import species_mean_accuracy
from mushroom_id.engine.metrics import expected_calibration_error, softmax

HEADS = ("lite1-linear", "lite1-class-mean", "lite0-class-mean")


def folds(sources: np.ndarray, species: np.ndarray, groups: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(held-out source, train mask, test mask) per source. Test: that source's photos of species that
    have photos from another source; train: every other source's photos, minus any photo that shares a
    near-duplicate group with a test photo."""
    by_species: dict[int, set[str]] = defaultdict(set)
    for s, sp in zip(sources, species, strict=True):
        by_species[int(sp)].add(str(s))
    multi = np.array([len(by_species[int(sp)]) > 1 for sp in species])
    out = []
    for source in sorted(set(sources.tolist())):
        test = (sources == source) & multi
        if not test.any():
            continue
        train = sources != source
        held_groups = set(groups[test].tolist()) - {""}
        train &= ~np.isin(groups, list(held_groups))
        out.append((source, train, test))
    return out


def head_logits(head: str, feats: dict[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray, n: int):
    from mushroom_id.engine.candidates import class_mean_head, train_linear_head

    backbone, kind = head.split("-", 1)
    x = feats[backbone]
    if kind == "linear":
        w, b = train_linear_head(x[train], y[train], n)  # the shipped head's settings
    else:
        w, b = class_mean_head(x[train], y[train], n)
    return x[test] @ w.T + b


def bootstrap_top5(probs: np.ndarray, y: np.ndarray, rounds: int = 200, seed: int = 0) -> tuple[float, float]:
    """95% interval of the species-balanced top-5 when the species are resampled."""
    rng = np.random.default_rng(seed)
    species = np.unique(y)
    hit = (np.argsort(-probs, axis=1)[:, :5] == y[:, None]).any(1)
    per = np.array([hit[y == s].mean() for s in species])
    draws = [per[rng.integers(0, len(per), len(per))].mean() for _ in range(rounds)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def trait_targets(field: FieldEvidence, key: str, y: np.ndarray) -> np.ndarray:
    """Per photo, the index of the offered option its species' trait fits (-1: unknown or several)."""
    shown = field.shown[key]
    out = np.full(len(y), -1)
    for n, label in enumerate(y):
        if not field.known[key][label]:
            continue
        fits = [j for j, i in enumerate(shown) if field.L[key][i, label] >= 1.0]
        if len(fits) == 1:
            out[n] = fits[0]
    return out


def trait_evidence(field: FieldEvidence, q_probs: dict[str, np.ndarray]) -> np.ndarray:
    """Soft evidence of predicted traits: per photo and species, Π_q Σ_v q(v | photo) L(v | species)."""
    first = next(iter(q_probs.values()))
    ev = np.ones((len(first), len(field.labels)))
    for key, qp in q_probs.items():
        shown = field.shown[key]
        ev *= qp @ field.L[key][shown]
    return ev


def main(argv: list[str] | None = None) -> int:
    from mushroom_id.core.catalog import default_catalog
    from mushroom_id.core.inference import cached_features
    from mushroom_id.core.models import imagenet_model
    from mushroom_id.core.traits import default_traits
    from mushroom_id.engine.candidates import BACKBONES, train_linear_head
    from mushroom_id.engine.data import SHARED_WORK_DIR, manifest_splits, shared_photo_splits
    from mushroom_id.engine.field_eval import (
        MISMATCH_GRID,
        STRATEGIES,
        cell,
        evaluate_strategy,
        save_report,
        selection_score,
        table,
    )

    parser = argparse.ArgumentParser(prog="python -m mushroom_id.engine.loso", description=__doc__)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    shared_photo_splits()  # prepares artifacts/shared-photos once (the data pipeline)
    data = manifest_splits(SHARED_WORK_DIR, catalog=default_catalog(), held_out_cap=None)
    with open(SHARED_WORK_DIR / "manifest.csv", newline="", encoding="utf-8") as f:
        meta = {r["raw_sha256"]: r for r in csv.DictReader(f) if r["status"] == "ok" and r["split"]}
    keys, y, feats = [], [], defaultdict(list)
    for split in ("train", "validation", "test"):
        ds = data[split]
        keys += list(ds.keys)
        y += list(ds.targets)
        for name in ("lite0", "lite1"):
            backbone = imagenet_model(BACKBONES[name])
            feats[name].append(
                cached_features(backbone.model, backbone.transform(), ds, list(ds.keys), f"{name}-pooled")
            )
    feats = {k: np.concatenate(v) for k, v in feats.items()}
    y = np.asarray(y)
    sources = np.array([meta[k]["source"] or meta[k]["crawler"] for k in keys])
    groups = np.array([meta[k].get("dup_group") or "" for k in keys])
    n = len(data.labels)
    plan = folds(sources, y, groups)
    tested = np.zeros(len(y), dtype=bool)
    for _, _, test in plan:
        tested |= test
    print(f"{tested.sum()} photos of {len(np.unique(y[tested]))} multi-source species in {len(plan)} folds")

    traits, catalog = default_traits(), default_catalog()
    field = FieldEvidence.for_labels(data.labels, traits, catalog.resolve)
    logits = {h: np.zeros((len(y), n)) for h in HEADS}
    q_logits = {k: np.zeros((len(y), len(QUESTIONS[k].shown))) for k in ("hymenium", "stipe", "spore_print")}
    per_source = {}
    for source, train, test in tqdm(plan, desc="leave-one-source-out"):
        for h in HEADS:
            logits[h][test] = head_logits(h, feats, y, train, test, n)
        for key in q_logits:
            target = trait_targets(field, key, y)
            usable = train & (target >= 0)
            w, b = train_linear_head(feats["lite1"][usable], target[usable], q_logits[key].shape[1])
            q_logits[key][test] = feats["lite1"][test] @ w.T + b
        per_source[source] = int(test.sum())

    yt = y[tested]
    report: dict = {"photos": int(tested.sum()), "species": int(len(np.unique(yt))), "folds": per_source}
    probs = {}
    for h in HEADS:
        t = fit_temperature(logits[h][tested], yt)
        probs[h] = softmax(logits[h][tested], t)
        lo, hi = bootstrap_top5(probs[h], yt, seed=args.seed)
        report[h] = {
            "temperature": t,
            "top1": species_mean_accuracy(probs[h], yt, 1),
            "top5": species_mean_accuracy(probs[h], yt, 5),
            "top5_95": [lo, hi],
            "ece": expected_calibration_error(probs[h], yt),
            "per_source_top5": {
                s: species_mean_accuracy(probs[h][sources[tested] == s], yt[sources[tested] == s], 5)
                for s in per_source
            },
        }
        print(f"{h:18s} top-1 {report[h]['top1']:.3f} top-5 {report[h]['top5']:.3f} [{lo:.3f}, {hi:.3f}]")
    best = max(HEADS, key=lambda h: report[h]["top1"] + report[h]["top5"])
    report["best_head"] = best

    grid = {}
    for w in tqdm(MISMATCH_GRID, desc="mismatch weight"):
        f_w = FieldEvidence.for_labels(data.labels, traits, catalog.resolve, mismatch=w)
        for strategy in STRATEGIES:
            grid[f"{w}|{strategy}"] = selection_score(evaluate_strategy(f_w, probs["lite1-linear"], yt, strategy))
    chosen = max(grid, key=grid.get)
    w, strategy = float(chosen.split("|")[0]), chosen.split("|", 1)[1]
    report["field_grid"] = grid
    report["field_chosen"] = {"mismatch": w, "strategy": strategy}
    f_w = FieldEvidence.for_labels(data.labels, traits, catalog.resolve, mismatch=w)
    report["field_rows"] = {h: evaluate_strategy(f_w, probs[h], yt, strategy) for h in HEADS}

    # predicted traits as soft evidence when no question is answered
    q_probs = {}
    for key, ql in q_logits.items():
        known = trait_targets(field, key, yt) >= 0
        t = fit_temperature(ql[tested][known], trait_targets(field, key, yt)[known])
        q_probs[key] = softmax(ql[tested], t)
    base = probs["lite1-linear"]
    with_traits = base * trait_evidence(f_w, q_probs)
    with_traits /= with_traits.sum(1, keepdims=True)
    report["trait_heads"] = {
        key: float((q_probs[key].argmax(1) == trait_targets(field, key, yt))[trait_targets(field, key, yt) >= 0].mean())
        for key in q_probs
    }
    report["photo_only"] = {
        "top1": species_mean_accuracy(base, yt, 1),
        "top5": species_mean_accuracy(base, yt, 5),
        "ece": expected_calibration_error(base, yt),
    }
    report["photo_plus_trait_heads"] = {
        "top1": species_mean_accuracy(with_traits, yt, 1),
        "top5": species_mean_accuracy(with_traits, yt, 5),
        "ece": expected_calibration_error(with_traits, yt),
    }
    a, b = report["photo_only"], report["photo_plus_trait_heads"]
    report["trait_heads_kept"] = bool(b["top1"] + b["top5"] > a["top1"] + a["top5"] and b["ece"] <= a["ece"])

    lines = [
        f"# Leave-one-source-out ({report['photos']} photos, {report['species']} multi-source species, "
        f"{len(per_source)} folds; species-balanced)",
        "",
        "| head | top-1 | top-5 (95% over species) | ECE |",
        "|---|---:|---:|---:|",
    ]
    for h in HEADS:
        r = report[h]
        lines.append(
            f"| {h} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% "
            f"({100 * r['top5_95'][0]:.1f}–{100 * r['top5_95'][1]:.1f}) | {r['ece']:.3f} |"
        )
    lines += ["", f"Field answers: mismatch {w}, strategy `{strategy}` (best mean top-1 + top-5 over 1-3 answers).", ""]
    for h in HEADS:
        lines += [*table(report["field_rows"][h], h), ""]
    lines += [
        "",
        "Trait heads (accuracy on photos whose species' trait is known): "
        + ", ".join(f"{k} {v:.0%}" for k, v in report["trait_heads"].items()),
        f"Photo only: top-1 / top-5 {cell(a)}, ECE {a['ece']:.3f}; "
        f"with predicted traits as evidence: {cell(b)}, ECE {b['ece']:.3f} "
        f"-> {'kept' if report['trait_heads_kept'] else 'not kept'}.",
    ]
    save_report(args.out, "loso", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
