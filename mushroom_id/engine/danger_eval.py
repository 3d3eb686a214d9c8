"""The red panel measured on photos from sources the model never saw, with and without field answers.

    python -m mushroom_id.engine.danger_eval [--model embedded] [--out reports]

On the cross-source test photos (species-balanced), for the old red box (every ``toxic_candidate``
warning) and the red panel (:func:`mushroom_id.core.danger.danger_panel` at the model's fitted share):
the share of toxic specimens whose own species, or a species of its genus, is named in red, and the
share of edible specimens that get a red panel. With field answers (a person answering the hymenium,
stem and spore-print questions from the true species' traits, exactly or with 10% / 25% of answers
wrong; :func:`mushroom_id.engine.field_eval.simulated_answers`) the rule runs on the answered result,
whose warnings keep every danger the photo alone raised (and where the answers can name a dangerous group
by its profile, ``mushroom_id/data/danger_profiles.csv``, or take a lookalike they contradict out of red).
Writes ``red_panel.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.danger import unnamed_dangers
from mushroom_id.engine.calibration import danger_rates
from mushroom_id.engine.field_eval import held_out, simulated_answers

ASKED = ("hymenium", "stipe", "spore_print")  # what a person can answer in the field in a minute


def outcomes(refine, probs: np.ndarray, people: list[dict] | None) -> dict:
    box = {"named": [], "panel": []}
    panel = {"named": [], "panel": []}
    shown = []
    for i, p in enumerate(probs):
        answers = {k: v for k, v in (people[i] if people else {}).items() if k in ASKED and v}
        r = refine(p, answers)
        toxic = [w["species"] for w in r["warnings"] if w.get("kind") == "toxic_candidate"]
        box["named"].append(toxic)
        box["panel"].append(bool(toxic))
        panel["named"].append([d["species"] for d in r["danger_panel"]])
        panel["panel"].append(bool(r["danger_panel"]))
        shown.append([d["species"] for d in r["danger_panel"]] + [w["species"] for w in unnamed_dangers(r)])
    return {"box": box, "panel": panel, "shown": {"named": shown, "panel": box["panel"]}}


def measure(spec: str = "embedded", out_dir: Path = Path("reports")) -> dict:
    from mushroom_id.core.questions import FieldEvidence
    from mushroom_id.core.safety import Thresholds, answer
    from mushroom_id.core.traits import default_traits

    loaded, _, held = held_out(spec)
    probs, y = held["test"]
    catalog = default_catalog()
    labels = loaded.labels
    index = {n: i for i, n in enumerate(labels)}
    thresholds = Thresholds.from_config(loaded.config)
    field = FieldEvidence.from_config(labels, loaded.config, default_traits(), catalog.resolve)
    model = {"id": loaded.model_id, "num_species": loaded.num_classes}

    def refine(p, answers):
        return answer(p, None, labels, catalog, thresholds, model, index=index, field=field, answers=answers)

    rows = {}
    levels = (("photo only", None), ("3 answers", 0.0), ("3 answers, 10% wrong", 0.1), ("3 answers, 25% wrong", 0.25))
    for name, noise in levels:
        people = None if noise is None else simulated_answers(field, y, noise)
        o = outcomes(refine, probs, people)
        rows[name] = {
            "red_box": danger_rates(o["box"], y, labels, catalog),
            "red_panel": danger_rates(o["panel"], y, labels, catalog),
            "toxic_shown_anywhere": danger_rates(o["shown"], y, labels, catalog)["toxic_named"],
        }
    report = {
        "model": loaded.model_id,
        "danger_share": thresholds.danger_share,
        "photos": int(len(y)),
        "asked": list(ASKED),
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "red_panel.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
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
    args = parser.parse_args(argv)
    print(table(measure(args.model, Path(args.out))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
