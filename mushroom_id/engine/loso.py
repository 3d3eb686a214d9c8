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
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mushroom_id.core.questions import QUESTIONS, FieldEvidence
from mushroom_id.engine.calibration import fit_temperature, fit_temperature_wide
from mushroom_id.engine.evaluation import species_mean_accuracy
from mushroom_id.engine.metrics import expected_calibration_error, softmax

HEADS = ("lite1-linear", "lite1-class-mean", "lite0-class-mean")
SPLITS = ("train", "validation", "test")


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


class HFlip:
    """Mirror a (C, H, W) tensor left-right (picklable, for the loader's worker processes)."""

    def __call__(self, x):
        return x.flip(-1)


def loso_data():
    """(splits, content hashes, labels, source, near-duplicate group) of every photo of the build, in the
    order train, validation, test (the order of the feature caches)."""
    from mushroom_id.core.catalog import default_catalog
    from mushroom_id.engine.data import SHARED_WORK_DIR, manifest_splits, shared_photo_splits

    shared_photo_splits()  # prepares artifacts/shared-photos once (the data pipeline)
    data = manifest_splits(SHARED_WORK_DIR, catalog=default_catalog(), held_out_cap=None)
    with open(SHARED_WORK_DIR / "manifest.csv", newline="", encoding="utf-8") as f:
        meta = {r["raw_sha256"]: r for r in csv.DictReader(f) if r["status"] == "ok" and r["split"]}
    keys, y = [], []
    for split in SPLITS:
        keys += list(data[split].keys)
        y += list(data[split].targets)
    sources = np.array([meta[k]["source"] or meta[k]["crawler"] for k in keys])
    groups = np.array([meta[k].get("dup_group") or "" for k in keys])
    return data, keys, np.asarray(y), sources, groups


def photo_features(data, name: str, flip: bool = False) -> np.ndarray:
    """Pooled features (N, D) of every photo (``loso_data``'s order) under one pip backbone with its own
    preprocessing; ``flip``: of the mirrored photos. Cached by content (``core.inference.cached``)."""
    from torchvision.transforms import Compose

    from mushroom_id.core.inference import cached_features
    from mushroom_id.core.models import imagenet_model
    from mushroom_id.engine.candidates import BACKBONES

    backbone = imagenet_model(BACKBONES[name])
    transform = Compose([backbone.transform(), HFlip()]) if flip else backbone.transform()
    tag = f"{name}-pooled" + ("-flip" if flip else "")
    return np.concatenate(
        [cached_features(backbone.model, transform, data[s], list(data[s].keys), tag) for s in SPLITS]
    )


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


def bootstrap_topk(probs: np.ndarray, y: np.ndarray, k: int, rounds: int = 1000, seed: int = 0):
    """95% interval of the species-balanced top-k when the species are resampled."""
    rng = np.random.default_rng(seed)
    species = np.unique(y)
    hit = (np.argsort(-probs, axis=1)[:, :k] == y[:, None]).any(1)
    per = np.array([hit[y == s].mean() for s in species])
    draws = per[rng.integers(0, len(per), (rounds, len(per)))].mean(1)
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def paired_difference(probs: np.ndarray, base: np.ndarray, y: np.ndarray, k: int, rounds: int = 1000, seed: int = 0):
    """(difference, 95% interval) of species-balanced top-k, ``probs`` minus ``base``, the same species resampled
    for both (a paired bootstrap: "outside the spread" when the interval excludes 0)."""
    rng = np.random.default_rng(seed)
    species = np.unique(y)

    def per_species(p):
        hit = (np.argsort(-p, axis=1)[:, :k] == y[:, None]).any(1)
        return np.array([hit[y == s].mean() for s in species])

    d = per_species(probs) - per_species(base)
    draws = d[rng.integers(0, len(d), (rounds, len(d)))].mean(1)
    return float(d.mean()), (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


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
    from mushroom_id.core.traits import default_traits
    from mushroom_id.engine.candidates import train_linear_head
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
    parser.add_argument("--candidates", action="store_true", help="the candidate photo models' table instead")
    parser.add_argument("--backbones", nargs="*", default=list(ALL), help="(--candidates) backbones to use")
    parser.add_argument("--flip", nargs="*", default=list(ALL), help="(--candidates) backbones with flip features")
    parser.add_argument("--linear", nargs="*", default=None, help="(--candidates) linear heads to fit (default all)")
    parser.add_argument("--max-cost", type=float, default=2.0, help="(--candidates) forward cost budget (x today)")
    args = parser.parse_args(argv)
    if args.candidates:
        import sys

        args.command_line = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--candidates"]
        return candidates_main(args)

    data, keys, y, sources, groups = loso_data()
    feats = {name: photo_features(data, name) for name in ("lite0", "lite1")}
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


# ---------------------------------------------------------------------------------------------------------
# Candidate photo models: every head below is fitted per fold on the other sources' photos (frozen features)

BASELINE = "lite1-linear"  # today's embedded head
MEAN_SCALE = 20.0  # class-mean cosines times this (as the floor's): their temperature stays in fit_temperature's range
# of the summed class-mean cosines next to linear logits; up to 1024: the built ensemble's weight was 128, the old
# grid's top (a chosen weight at the top is flagged in the report: extend the grid then)
BLEND_WEIGHTS = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
ALL = ("lite0", "lite1", "lite2")


def candidate_heads():
    """The rows of the candidate table, each with and without flip averaging."""
    from mushroom_id.engine.candidates import PhotoHead

    rows = []
    for flip in (False, True):
        rows += [PhotoHead(means=(b,), flip=flip) for b in ALL]
        rows += [PhotoHead(linear=(b,), flip=flip) for b in ALL]
        rows += [PhotoHead(means=ALL, flip=flip), PhotoHead(means=("lite0", "lite1"), flip=flip)]
        rows += [PhotoHead(linear=ALL, flip=flip)]
        rows += [PhotoHead(linear=("lite1",), means=ALL, flip=flip)]
        rows += [PhotoHead(linear=("lite1",), means=("lite0", "lite1"), flip=flip)]
    return rows


def forward_cost(head) -> float:
    """Multiply-adds of the head's backbone forwards (each at its own input size, twice with flip) relative
    to one Lite1 forward (today's served path: one Lite1 forward feeds the species head and the gate)."""
    return sum(BACKBONE_MACS[b] for b in head.backbones) * (2 if head.flip else 1) / BACKBONE_MACS["lite1"]


# GMACs of one forward at the backbone's own input size (torch.utils.flop_counter, see backbone_macs)
BACKBONE_MACS = {"lite0": 0.385, "lite1": 0.600, "lite2": 0.860}


def backbone_macs() -> dict[str, float]:
    """Re-measure :data:`BACKBONE_MACS` (a test checks that the table matches)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mushroom_id.core.models import imagenet_model
    from mushroom_id.engine.candidates import BACKBONES

    out = {}
    for name, pkg in BACKBONES.items():
        loaded = imagenet_model(pkg)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            loaded.model(torch.zeros(1, *loaded.data_config["input_size"]))
        out[name] = counter.get_total_flops() / 2e9
    return out


def fold_logits(head, feats, y, plan, n, seed: int, cache_key: str):
    """Out-of-fold (linear logits, summed class-mean cosines) of ``head`` for every tested photo (zeros
    elsewhere); the linear part cached in artifacts/loso (its fits dominate: ~1-2 min each on 2 cores)."""
    import hashlib

    from mushroom_id.core.paths import REPO_DIR
    from mushroom_id.engine.candidates import PhotoHead, fit_photo_head

    lin = means = None
    if head.linear:
        key = hashlib.sha256(f"{cache_key}|{linear_part(head)}|{seed}".encode())
        file = REPO_DIR / "artifacts" / "loso" / f"linear-{key.hexdigest()[:16]}.npy"
        if file.is_file():
            lin = np.load(file)
        else:
            lin = np.zeros((len(y), n), np.float32)
            for _, train, test in tqdm(plan, desc=head.name, leave=False):
                part = PhotoHead(linear=head.linear, flip=head.flip)
                fitted = fit_photo_head(part, _rows(feats, train), y[train], n, seed=seed)
                lin[test] = fitted.linear_logits(_rows(feats, test))
            file.parent.mkdir(parents=True, exist_ok=True)
            np.save(file, lin)
    if head.means:
        means = np.zeros((len(y), n), np.float32)
        for _, train, test in plan:
            fitted = fit_photo_head(PhotoHead(means=head.means, flip=head.flip), _rows(feats, train), y[train], n)
            means[test] = fitted.mean_scores(_rows(feats, test))
    return lin, means


def linear_part(head) -> str:
    """The name of ``head``'s linear head alone (flip kept): what ``--linear`` selects and the cache is keyed by."""
    from mushroom_id.engine.candidates import PhotoHead

    return PhotoHead(linear=head.linear, flip=head.flip).name


def _backbones(name: str) -> list[str]:
    """The backbones a row's name uses."""
    return [b for b in ALL if b in name]


def _rows(feats: dict, mask) -> dict:
    return {k: v[mask] for k, v in feats.items()}


def best_weight(lin, means, y, mask) -> float:
    """The class-mean weight (of :data:`BLEND_WEIGHTS`) with the best species-balanced top-1 + top-5 on ``mask``."""

    def score(w):
        z = lin[mask] + w * means[mask]
        return species_mean_accuracy(z, y[mask], 1) + species_mean_accuracy(z, y[mask], 5)

    return max(BLEND_WEIGHTS, key=score)


def blend_weights(lin, means, y, plan) -> list[float]:
    """Per fold, the weight of the class-mean scores chosen on the *other* folds' held-out photos (the fold's
    own photos never choose their weight)."""
    fold_of = np.full(len(y), -1)
    for i, (_, _, test) in enumerate(plan):
        fold_of[test] = i
    return [best_weight(lin, means, y, (fold_of >= 0) & (fold_of != i)) for i in range(len(plan))]


def candidates_main(args) -> int:
    """The candidate table: every row of :func:`candidate_heads` whose features are at hand."""
    import hashlib

    from mushroom_id.core.paths import REPO_DIR
    from mushroom_id.engine.field_eval import save_report

    data, keys, y, sources, groups = loso_data()
    n = len(data.labels)
    plan = folds(sources, y, groups)
    tested = np.zeros(len(y), dtype=bool)
    fold_of = np.full(len(y), -1)
    for i, (_, _, test) in enumerate(plan):
        tested |= test
        fold_of[test] = i
    raw = {b: photo_features(data, b) for b in args.backbones}
    flipped = {b: photo_features(data, b, flip=True) for b in args.flip}
    cache_key = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    yt = y[tested]
    heads = [
        h
        for h in candidate_heads()
        if all(b in (flipped if h.flip else raw) for b in h.backbones)
        and (not h.linear or args.linear is None or linear_part(h) in args.linear)
    ]
    skipped = [h.name for h in candidate_heads() if h not in heads]
    print(f"{tested.sum()} photos, {len(np.unique(yt))} multi-source species, {len(plan)} folds, {len(heads)} heads")
    report: dict = {
        "photos": int(tested.sum()),
        "species": int(len(np.unique(yt))),
        "folds": {s: int(t.sum()) for s, _, t in plan},
        "not_run": skipped,
        "rows": {},
    }
    probs_of, oof = {}, {}
    for head in heads:
        feats = {b: (raw[b] + flipped[b]) / 2 if head.flip else raw[b] for b in head.backbones}
        lin, means = fold_logits(head, feats, y, plan, n, args.seed, cache_key)
        row: dict = {"forward_cost": forward_cost(head)}
        if head.blend:
            ws = blend_weights(lin, means, y, plan)
            logits = lin + np.array(ws)[np.maximum(fold_of, 0)][:, None] * means
            row["blend_weights"] = dict(zip([s for s, _, _ in plan], ws, strict=True))
        else:
            logits = lin if head.linear else MEAN_SCALE * means
        t = fit_temperature_wide(logits[tested], yt)  # blends with a weight of hundreds need T past 20
        probs = softmax(logits[tested], t)
        probs_of[head.name], oof[head.name] = probs, logits[tested].astype(np.float32)
        row |= {
            "temperature": t,
            "top1": species_mean_accuracy(probs, yt, 1),
            "top5": species_mean_accuracy(probs, yt, 5),
            "top1_95": bootstrap_topk(probs, yt, 1, seed=args.seed),
            "top5_95": bootstrap_topk(probs, yt, 5, seed=args.seed),
            "ece": expected_calibration_error(probs, yt),
        }
        report["rows"][head.name] = row
        print(f"{head.name:55s} top-1 {row['top1']:.3f} top-5 {row['top5']:.3f} {row['top5_95']}")
    base = probs_of.get(BASELINE)
    if base is not None:
        for name, row in report["rows"].items():
            for k in (1, 5):
                d, ci = paired_difference(probs_of[name], base, yt, k, seed=args.seed)
                row[f"top{k}_vs_baseline"] = {"difference": d, "95": ci}
    feasible = {h: r for h, r in report["rows"].items() if r["forward_cost"] <= args.max_cost}
    winner = max(feasible, key=lambda h: (round(feasible[h]["top5"], 9), feasible[h]["top1"]))
    w = report["rows"][winner]
    earlier = None
    if base is not None:  # paired: the interval of the difference excludes 0
        beats = bool(w["top5_vs_baseline"]["95"][0] > 0 and w["top1_vs_baseline"]["difference"] >= 0)
    else:  # today's head not refitted in this run: its row of the last leave-one-source-out run (same folds)
        previous = Path(args.out) / "loso.json"
        earlier = json.loads(previous.read_text()).get(BASELINE) if previous.is_file() else None
        beats = bool(earlier and w["top5_95"][0] > earlier["top5_95"][1] and w["top1"] >= earlier["top1"])
        report["baseline_from_last_run"] = earlier
    report["winner"] = {"head": winner, "max_cost": args.max_cost, "beats_baseline": beats}
    out = REPO_DIR / "artifacts" / "loso"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "oof.npz",
        keys=np.array(keys)[tested],
        y=yt,
        source=sources[tested],
        **{f"logits|{h}": v for h, v in oof.items()},
    )

    lines = [
        f"# Leave-one-source-out candidates ({report['photos']} photos, {report['species']} multi-source species, "
        f"{len(plan)} folds; species-balanced, 95% intervals over species)",
        "",
        "    " + " ".join(["python -m mushroom_id.engine.loso --candidates", *args.command_line]),
        "",
        "| photo model | forward cost | top-1 (95%) | top-5 (95%) | top-5 vs today (95%) | ECE |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def pct(v):
        return f"{100 * v:.1f}%"

    for name, r in report["rows"].items():
        vs = r.get("top5_vs_baseline")
        diff = f"{100 * vs['difference']:+.1f} ({100 * vs['95'][0]:+.1f}, {100 * vs['95'][1]:+.1f})" if vs else "-"
        bold = "**" if name == winner else ""
        lines.append(
            f"| {bold}{name}{bold} | {r['forward_cost']:.1f}x | {pct(r['top1'])} ({pct(r['top1_95'][0])}–"
            f"{pct(r['top1_95'][1])}) | {pct(r['top5'])} ({pct(r['top5_95'][0])}–{pct(r['top5_95'][1])}) | "
            f"{diff} | {r['ece']:.3f} |"
        )
    if earlier:
        lines.append(
            f"| {BASELINE} (today's head; row of the last `python -m mushroom_id.engine.loso` run, same folds) "
            f"| 1.0x | {pct(earlier['top1'])} | {pct(earlier['top5'])} ({pct(earlier['top5_95'][0])}–"
            f"{pct(earlier['top5_95'][1])}) | - | {earlier['ece']:.3f} |"
        )
    lines += [
        "",
        f"Forward cost: backbone multiply-adds against today's one Lite1 forward (flip: twice). Winner within "
        f"{args.max_cost:g}x: **{winner}**; beats today's head outside the spread on top-5 without losing top-1: "
        f"{'yes' if beats else 'no'}. Blends: the class-mean weight of each fold chosen on the other folds' "
        "held-out photos.",
    ]
    blends = {name: r["blend_weights"] for name, r in report["rows"].items() if "blend_weights" in r}
    if blends:
        at_top = [name for name, ws in blends.items() if max(ws.values()) >= max(BLEND_WEIGHTS)]
        report["blend_weight_at_grid_top"] = at_top
        lines += [
            "",
            f"Blend weights per fold (grid {', '.join(f'{w:g}' for w in BLEND_WEIGHTS)}): "
            + "; ".join(f"{name}: {', '.join(f'{w:g}' for w in ws.values())}" for name, ws in blends.items())
            + (f". At the grid's top: {', '.join(at_top)}." if at_top else ". None at the grid's top."),
        ]
    lines += [
        "",
        "Multi-crop at test time: not run (each crop is one more forward of every backbone: 3 crops of today's "
        "head already cost 3x, past the 2x budget; the features of crops are not cached).",
    ]
    if skipped:
        unused = [h for h in skipped if not all(b in raw for b in _backbones(h))]
        no_feats = [
            h
            for h in skipped
            if h not in unused and h.endswith("(flip)") and not all(b in flipped for b in _backbones(h))
        ]
        rest = [h for h in skipped if h not in unused and h not in no_feats]
        if unused:
            lines += ["", "Not run, backbone not selected (`--backbones`): " + ", ".join(unused)]
        if no_feats:
            lines += ["", "Not run, flip features not computed (`--flip`): " + ", ".join(no_feats)]
        if rest:
            lines += ["", "Not run, linear heads not fitted per fold (`--linear`): " + ", ".join(rest)]
    save_report(args.out, "loso_candidates", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
