"""How much field answers help, measured on photos from sources the model never saw.

    python -m mushroom_id.engine.field_eval [--model embedded] [--floor] [--write] [--out reports]

For every cross-source validation and test photo the model's calibrated probabilities are re-weighted by
simulated answers: a person answers each question from the photo's true species' traits (one of the
values the sources give; "not sure" where no source knows the trait), and with 10% or 25% of answers
replaced by a wrong option. Questions are asked one after another, the next one chosen by a strategy
(expected information gain, expected top-5 gain, or a fixed order); after 0-4 answers the species-balanced
top-1/top-5 are recorded.

On cross-source **validation** this fits the mismatch weight and picks the strategy (mean over 1-3 answers
and the three noise levels of top-1 + top-5); **test** numbers are reported for that choice only.
``--write`` stores ``field_questions: {mismatch, strategy}`` in the model's config.json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mushroom_id.core.questions import QUESTION_KEYS, QUESTIONS, FieldEvidence
from mushroom_id.engine.evaluation import species_mean_accuracy

NOISE_LEVELS = (0.0, 0.10, 0.25)
MISMATCH_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)
STRATEGIES = (
    "info_gain",
    "top5_gain",
    "fixed:spore_print,hymenium,stipe,ecology,gill_attachment",
    "fixed:hymenium,stipe,spore_print,ecology,gill_attachment",
    "fixed:hymenium,stipe,ecology,spore_print,gill_attachment",
)
MAX_ANSWERS = 4


def simulated_answers(field: FieldEvidence, y: np.ndarray, noise: float, seed: int = 0) -> list[dict[str, str | None]]:
    """Per photo: question -> the answer a person gives (None: "not sure", the species' trait is unknown).

    The exact answer is an offered option that fits the true species' known trait (drawn among them when
    several fit); with probability ``noise`` it is replaced by another offered option. The draws depend on
    the seed and the photo only, so every strategy meets the same person."""
    rng = np.random.default_rng(seed)
    out = []
    for label in y:
        person: dict[str, str | None] = {}
        for key in QUESTION_KEYS:
            q = QUESTIONS[key]
            shown = field.shown[key]
            fits = [i for i in shown if field.known[key][label] and field.L[key][i, label] >= 1.0]
            flip, pick_wrong, pick = rng.random(), rng.random(), rng.random()  # drawn always: same stream
            if not fits:
                person[key] = None
                continue
            chosen = fits[int(pick * len(fits))]
            if flip < noise:
                others = [i for i in shown if i not in fits]
                chosen = others[int(pick_wrong * len(others))] if others else chosen
            person[key] = q.options[chosen].value
        out.append(person)
    return out


@dataclass
class Run:
    """The re-weighted probabilities after 0..MAX_ANSWERS questions, and which question came first."""

    probs: list[np.ndarray]  # per step: (N, C)
    first: list[str | None]  # per photo: the first question asked


def ask_sequence(
    field: FieldEvidence,
    probs: np.ndarray,
    people: list[dict[str, str | None]],
    strategy: str,
    steps: int = MAX_ANSWERS,
) -> Run:
    steps_out = [np.asarray(probs, dtype=np.float64)]
    per_step = [np.empty_like(steps_out[0]) for _ in range(steps)]
    first: list[str | None] = []
    for n, (p0, person) in enumerate(zip(steps_out[0], people, strict=True)):
        answers: dict[str, str] = {}
        asked: list[str] = []
        post = p0
        for step in range(steps):
            scores = field.question_scores(post, answers, strategy, skip=asked)
            if scores:
                key = max(scores, key=lambda k: (scores[k], -QUESTION_KEYS.index(k)))
                asked.append(key)
                if step == 0:
                    first.append(key)
                if person.get(key):
                    answers[key] = person[key]
                    post = field.reweight(p0, answers)
            elif step == 0:
                first.append(None)
            per_step[step][n] = post
    return Run(steps_out + per_step, first)


def balanced(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"top1": species_mean_accuracy(probs, y, 1), "top5": species_mean_accuracy(probs, y, 5)}


def best_question_share(field: FieldEvidence, probs: np.ndarray, y: np.ndarray, people, run: Run) -> float:
    """How often the first question asked was the one whose answer lifted the true species most (among
    photos where some answer changes anything)."""
    hits, counted = 0, 0
    for n, label in enumerate(y):
        lifts = {}
        for key in field.open_questions({}):
            value = people[n].get(key)
            lifts[key] = field.reweight(probs[n], {key: value})[label] if value else probs[n][label]
        best = max(lifts.values())
        if best <= probs[n][label] + 1e-12:
            continue
        counted += 1
        hits += run.first[n] is not None and lifts.get(run.first[n], -1) >= best - 1e-12
    return hits / counted if counted else float("nan")


def evaluate_strategy(field, probs, y, strategy, seed=0) -> dict:
    """Rows per noise level: species-balanced top-1/top-5 after 0..4 answers."""
    rows = {}
    for noise in NOISE_LEVELS:
        people = simulated_answers(field, y, noise, seed)
        run = ask_sequence(field, probs, people, strategy)
        rows[f"{noise:.2f}"] = {
            "by_answers": [balanced(p, y) for p in run.probs],
            "best_first_question": best_question_share(field, probs, y, people, run) if noise == 0 else None,
            "confident_share_3": float((run.probs[3].max(1) >= 0.5).mean()),
            "confident_right_3": float((run.probs[3].argmax(1) == y)[run.probs[3].max(1) >= 0.5].mean())
            if (run.probs[3].max(1) >= 0.5).any()
            else None,
            "first_questions": {k: run.first.count(k) for k in set(run.first)},
        }
    return rows


def selection_score(rows: dict) -> float:
    """Mean over the noise levels and 1-3 answers of top-1 + top-5 (validation only)."""
    vals = [r["by_answers"][k]["top1"] + r["by_answers"][k]["top5"] for r in rows.values() for k in (1, 2, 3)]
    return float(np.mean(vals))


def held_out(model_spec: str, seed: int = 0):
    """(loaded model, {split: (calibrated probs, y)}) on the cross-source validation and test photos."""
    from mushroom_id.core.catalog import default_catalog
    from mushroom_id.core.inference import cached
    from mushroom_id.core.models import load_model
    from mushroom_id.engine.comparison import subset_masks
    from mushroom_id.engine.data import load_splits, remap
    from mushroom_id.engine.metrics import softmax

    loaded = load_model(model_spec)
    data = remap(
        load_splits("shared-photos", labels=loaded.labels, catalog=default_catalog(), seed=seed), loaded.labels
    )
    out = {}
    for split in ("validation", "test"):
        ds = data[split]
        mask = subset_masks(data, split).get("cross_source", np.ones(len(ds.targets), dtype=bool))
        (logits,) = cached(f"field-{loaded.model_id}-{split}", list(ds.keys), loaded.model, ds, loaded.transform())[:1]
        out[split] = (softmax(logits.astype(np.float64), loaded.temperature)[mask], np.asarray(ds.targets)[mask])
    return loaded, data, out


def floor_probs(data, split: str, temperature_split: str = "validation") -> tuple[np.ndarray, np.ndarray]:
    """The Lite0 class-mean floor's probabilities on the cross-source photos of ``split`` (its temperature
    fitted on cross-source validation)."""
    from mushroom_id.core.inference import cached_features
    from mushroom_id.core.models import imagenet_model
    from mushroom_id.engine.calibration import fit_temperature
    from mushroom_id.engine.candidates import nearest_centroid_logits
    from mushroom_id.engine.comparison import subset_masks
    from mushroom_id.engine.metrics import softmax

    backbone = imagenet_model()
    feats = {
        s: cached_features(backbone.model, backbone.transform(), data[s], list(data[s].keys), "lite0-pooled")
        for s in ("train", temperature_split, split)
    }
    out = {}
    for s in (temperature_split, split):
        mask = subset_masks(data, s).get("cross_source", np.ones(len(data[s].targets), dtype=bool))
        logits = nearest_centroid_logits(feats["train"], data["train"].targets, feats[s], len(data.labels))
        out[s] = (logits[mask], np.asarray(data[s].targets)[mask])
    t = fit_temperature(*out[temperature_split])
    return softmax(out[split][0], t), out[split][1]


def cell(m: dict) -> str:
    """Species-balanced "top-1 / top-5" of one row, in percent."""
    return f"{100 * m['top1']:.1f}% / {100 * m['top5']:.1f}%"


def save_report(out_dir: str | Path, name: str, report: dict, lines: list[str]) -> None:
    """``<name>.json`` (the numbers) and ``<name>.md`` (the table, also printed) in ``out_dir``."""
    from mushroom_id.core.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", report)
    atomic_write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def table(rows: dict, title: str) -> list[str]:
    lines = [f"| {title} | " + " | ".join(f"{k} answers" for k in range(MAX_ANSWERS + 1)) + " |"]
    lines.append("|---|" + "---:|" * (MAX_ANSWERS + 1))
    for noise, r in rows.items():
        cells = [cell(m) for m in r["by_answers"]]
        lines.append(f"| {'exact' if float(noise) == 0 else f'{float(noise):.0%} wrong'} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from mushroom_id.core.catalog import default_catalog
    from mushroom_id.core.models import write_config
    from mushroom_id.core.traits import default_traits

    parser = argparse.ArgumentParser(prog="python -m mushroom_id.engine.field_eval", description=__doc__)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--floor", action="store_true", help="also the Lite0 class-mean floor (computes features)")
    parser.add_argument("--write", action="store_true", help="store the chosen mismatch/strategy in config.json")
    parser.add_argument("--out", default="reports", help="field_questions.json and .md go here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--settings-from",
        default=None,
        help="a loso.json (python -m mushroom_id.engine.loso): take its mismatch weight and strategy, chosen by "
        "leave-one-source-out on ~10x more photos, instead of this validation grid's",
    )
    args = parser.parse_args(argv)

    loaded, data, held = held_out(args.model, args.seed)
    traits, catalog = default_traits(), default_catalog()
    pv, yv = held["validation"]
    pt, yt = held["test"]
    print(f"cross-source photos: validation {len(yv)} ({len(set(yv))} species), test {len(yt)} ({len(set(yt))})")
    grid = {}
    for w in MISMATCH_GRID:
        field = FieldEvidence.for_labels(loaded.labels, traits, catalog.resolve, mismatch=w)
        for strategy in STRATEGIES:
            grid[(w, strategy)] = selection_score(evaluate_strategy(field, pv, yv, strategy, args.seed))
            print(f"validation  mismatch {w:<5} {strategy:60s} {grid[(w, strategy)]:.4f}")
    w, strategy = max(grid, key=grid.get)
    chosen_by = "cross-source validation"
    if args.settings_from:
        loso = json.loads(Path(args.settings_from).read_text())["field_chosen"]
        w, strategy, chosen_by = (
            float(loso["mismatch"]),
            loso["strategy"],
            f"leave-one-source-out ({args.settings_from})",
        )
    field = FieldEvidence.for_labels(loaded.labels, traits, catalog.resolve, mismatch=w)
    test_rows = evaluate_strategy(field, pt, yt, strategy, args.seed)
    fixed_rows = {s: evaluate_strategy(field, pt, yt, s, args.seed) for s in STRATEGIES if s != strategy}
    report = {
        "model": loaded.model_id,
        "photos": {"validation": int(len(yv)), "test": int(len(yt))},
        "species": {"validation": int(len(set(yv))), "test": int(len(set(yt)))},
        "validation_grid": {f"{k[0]}|{k[1]}": v for k, v in grid.items()},
        "chosen": {"mismatch": w, "strategy": strategy, "by": chosen_by},
        "test": test_rows,
        "test_other_strategies": fixed_rows,
        "trait_coverage_of_labels": traits.coverage([catalog.resolve(n) or n for n in loaded.labels]),
    }
    lines = [
        f"# Field questions on cross-source test ({len(yt)} photos, {len(set(yt))} species; species-balanced)",
        "",
        f"Model `{loaded.model_id}`; mismatch weight {w} and strategy `{strategy}` chosen by {chosen_by}.",
        "Cells: top-1 / top-5 after 0-4 answers.",
        "",
        *table(test_rows, "answers"),
    ]
    if args.floor:
        fp, fy = floor_probs(data, "test")
        floor_field = field  # the same labels: the floor is built on the same label space
        report["floor_test"] = evaluate_strategy(floor_field, fp, fy, strategy, args.seed)
        lines += ["", *table(report["floor_test"], "floor (Lite0 class-mean)")]
    lines += ["", "Other strategies on test (exact answers):", ""]
    for s, rows in fixed_rows.items():
        cells = [cell(m) for m in rows["0.00"]["by_answers"]]
        lines.append(f"- `{s}`: " + " · ".join(cells))
    exact = test_rows["0.00"]
    lines += [
        "",
        f"First question was the one that lifted the right species most: {exact['best_first_question']:.0%} of photos.",
        f"After 3 exact answers, top probability >= 0.5 for {exact['confident_share_3']:.0%} of photos "
        f"(right {exact['confident_right_3'] or 0:.0%} of those).",
    ]
    save_report(args.out, "field_questions", report, lines)
    if args.write:
        if loaded.folder is None:
            raise SystemExit("--write needs a model folder (embedded or local-dir:)")
        write_config(loaded.folder, {**loaded.config, "field_questions": {"mismatch": w, "strategy": strategy}})
        print(f"wrote field_questions to {loaded.folder / 'config.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
