"""The red panel measured on photos from sources the model never saw, with and without field answers.

    python -m mushroom_id.engine.danger_eval [--model embedded] [--out reports] [--split test]

On the cross-source photos of a split (test by default; species-balanced), for the old red box (every
``toxic_candidate`` warning) and the red panel (:func:`mushroom_id.core.danger.danger_panel` at the
model's fitted share): the share of toxic specimens whose own species, or a species of its genus, is named
in red, and the share of edible specimens that get a red panel.

With field answers a simulated person (answers from the true species' traits, exactly or with 10% / 25%
of them wrong; :func:`mushroom_id.engine.field_eval.simulated_answers`) goes through **the flow the app
runs**: it answers the first question the page offers (``result["questions"][0]``: the model's fitted
strategy, instant questions before the spore print), the page re-ranks, and so on for three questions; a
question whose answer the person cannot give (the species' trait is unknown) is answered "not sure", which
skips it and counts as one of the three. The rows "fixed" ask the three questions the first measurement
asked (under the cap, stem, spore print), for comparison. The rule runs on the answered result, whose
warnings keep every danger the photo alone raised; this is asserted for every photo of every row (the
union rule: an answer may add a warning, never hide one the photo raised).
Writes ``red_panel.json`` (or ``red_panel_<split>.json`` for another split) and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.danger import unnamed_dangers
from mushroom_id.engine.calibration import danger_rates
from mushroom_id.engine.field_eval import held_out, simulated_answers

FIXED = ("hymenium", "stipe", "spore_print")  # the first measurement's three questions
ASKED = 3  # questions a person answers (or skips) in the app's flow
NOISE = (("truthful", 0.0), ("10% wrong", 0.1), ("25% wrong", 0.25))

_held_out = functools.cache(held_out)  # the fit measures the same photos many times

Refine = Callable[[np.ndarray, Mapping[str, str], Sequence[str]], dict]


def app_flow(refine: Refine, p: np.ndarray, person: Mapping[str, str | None], asked: int = ASKED):
    """(answers, skipped, the answered result): the person answers the page's first offered question, the
    page re-ranks, ``asked`` times; an answer the person cannot give is "not sure" (skipped)."""
    answers: dict[str, str] = {}
    skipped: list[str] = []
    r = refine(p, answers, skipped)
    for _ in range(asked):
        if not r["questions"]:
            break
        key = r["questions"][0]["key"]
        value = person.get(key)
        if value:
            answers[key] = value
        else:
            skipped.append(key)
        r = refine(p, answers, skipped)
    return answers, skipped, r


def fixed_flow(refine: Refine, p: np.ndarray, person: Mapping[str, str | None], keys: Sequence[str] = FIXED):
    answers = {k: v for k, v in person.items() if k in keys and v}
    return answers, [k for k in keys if k not in answers], refine(p, answers, [])


def photo_dangers(r: Mapping) -> set[str]:
    return {w["species"] for w in r["warnings"] if w.get("kind") == "toxic_candidate"}


def shown_dangers(r: Mapping) -> set[str]:
    """Every dangerous species on the page: in red, or in the details fold."""
    return {d["species"] for d in r["danger_panel"]} | {w["species"] for w in unnamed_dangers(r)}


def outcomes(refine: Refine, probs: np.ndarray, people: list[dict] | None, flow=app_flow) -> dict:
    box = {"named": [], "panel": []}
    panel = {"named": [], "panel": []}
    shown = []
    asked: Counter = Counter()
    for i, p in enumerate(probs):
        photo = refine(p, {}, [])
        if people is None:
            r = photo
        else:
            answers, skipped, r = flow(refine, p, people[i])
            asked.update([*answers, *skipped])
            lost = photo_dangers(photo) - shown_dangers(r)
            assert not lost, f"the union rule: photo {i}'s answers {answers} hid {sorted(lost)}"
        toxic = sorted(photo_dangers(r))
        box["named"].append(toxic)
        box["panel"].append(bool(toxic))
        panel["named"].append([d["species"] for d in r["danger_panel"]])
        panel["panel"].append(bool(r["danger_panel"]))
        shown.append(sorted(shown_dangers(r)))
    return {
        "box": box,
        "panel": panel,
        "shown": {"named": shown, "panel": box["panel"]},
        "asked": dict(asked.most_common()),
    }


def measure(
    spec: str = "embedded",
    out_dir: Path | None = Path("reports"),
    split: str = "test",
    fixed: bool = True,
    noise: Sequence[tuple[str, float]] = NOISE,
) -> dict:
    from mushroom_id.core.questions import FieldEvidence, field_settings
    from mushroom_id.core.safety import Thresholds, answer
    from mushroom_id.core.traits import default_traits

    loaded, _, held = _held_out(spec)
    probs, y = held[split]
    catalog = default_catalog()
    labels = loaded.labels
    index = {n: i for i, n in enumerate(labels)}
    thresholds = Thresholds.from_config(loaded.config)
    field = FieldEvidence.from_config(labels, loaded.config, default_traits(), catalog.resolve)
    _, strategy, _ = field_settings(loaded.config)
    model = {"id": loaded.model_id, "num_species": loaded.num_classes}

    def refine(p, answers, skip):
        return answer(
            p,
            None,
            labels,
            catalog,
            thresholds,
            model,
            index=index,
            field=field,
            answers=dict(answers),
            strategy=strategy,
            skip=list(skip),
        )

    levels: list[tuple[str, float | None, object]] = [("photo only", None, None)]
    levels += [(f"3 answers in the app's order, {n}", level, app_flow) for n, level in noise]
    if fixed:
        levels += [
            (f"3 fixed answers (under the cap, stem, spore print), {n}", level, fixed_flow) for n, level in noise
        ]
    rows = {}
    for name, level, flow in levels:
        people = None if level is None else simulated_answers(field, y, level)
        o = outcomes(refine, probs, people, flow or app_flow)
        rows[name] = {
            "red_box": danger_rates(o["box"], y, labels, catalog),
            "red_panel": danger_rates(o["panel"], y, labels, catalog),
            "toxic_shown_anywhere": danger_rates(o["shown"], y, labels, catalog)["toxic_named"],
            "union_rule": True,  # asserted photo by photo in outcomes()
            "questions_asked": o["asked"],
        }
    report = {
        "model": loaded.model_id,
        "split": f"cross-source {split}",
        "danger_share": thresholds.danger_share,
        "strategy": strategy,
        "photos": int(len(y)),
        "asked": ASKED,
        "fixed": list(FIXED),
        "rows": rows,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        name = "red_panel.json" if split == "test" else f"red_panel_{split}.json"
        (out_dir / name).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


GUESSES_GRID = (1, 2, 3)  # 1: no guess below the top is named for its rank alone
LOOKALIKE_SHARE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def fit(spec: str = "embedded", out_dir: Path | None = Path("reports")) -> dict:
    """The answered-result settings of :mod:`mushroom_id.core.danger` (``ANSWERED_GUESSES``,
    ``ANSWERED_LOOKALIKE_SHARE``) fitted on cross-source **validation**, truthful answers in the app's
    flow: the largest toxic-named minus edible-panel rate (as ``danger_share``), ties to the safer setting
    (more guesses, then the smaller share). The test split is never looked at."""
    from mushroom_id.core import danger

    saved = danger.ANSWERED_GUESSES, danger.ANSWERED_LOOKALIKE_SHARE
    grid = []
    try:
        for guesses in GUESSES_GRID:
            for look in LOOKALIKE_SHARE_GRID:
                danger.ANSWERED_GUESSES, danger.ANSWERED_LOOKALIKE_SHARE = guesses, look
                r = measure(spec, None, "validation", fixed=False, noise=(NOISE[0],))
                rates = r["rows"][f"3 answers in the app's order, {NOISE[0][0]}"]["red_panel"]
                score = round(rates["toxic_named"] - rates["edible_with_panel"], 9)
                grid.append({"guesses": guesses, "lookalike_share": look, **rates, "score": score})
    finally:
        danger.ANSWERED_GUESSES, danger.ANSWERED_LOOKALIKE_SHARE = saved
    best = max(grid, key=lambda g: (g["score"], g["guesses"], -g["lookalike_share"]))
    report = {"split": "cross-source validation", "best": best, "grid": grid}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "red_panel_fit.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def table(report: dict) -> str:
    lines = [
        "| answers | toxic specimens named in red (species or genus): old red box → red panel | edible specimens with "
        "a red panel: old → new | toxic specimens whose species or genus is on the page (red or details) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in report["rows"].items():
        lines.append(
            f"| {name} | {r['red_box']['toxic_named']:.1%} → {r['red_panel']['toxic_named']:.1%} | "
            f"{r['red_box']['edible_with_panel']:.1%} → {r['red_panel']['edible_with_panel']:.1%} | "
            f"{r['toxic_shown_anywhere']:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--fit", action="store_true", help="fit the answered-result settings on validation")
    args = parser.parse_args(argv)
    if args.fit:
        best = fit(args.model, Path(args.out))["best"]
        print(f"ANSWERED_GUESSES = {best['guesses']}, ANSWERED_LOOKALIKE_SHARE = {best['lookalike_share']}: {best}")
        return 0
    print(table(measure(args.model, Path(args.out), args.split)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
