"""How much field answers help, measured on photos from sources the model never saw, as a person meets them.

    python -m mushroom_id.engine.field_eval [--model embedded] [--floor] [--write] [--out reports]

For every cross-source validation and test photo the model's calibrated probabilities are re-weighted by
simulated answers. The flow is the app's: up to five questions a person answers in seconds with the
mushroom in hand (the next one chosen by a strategy), then the spore print, which takes hours, added.

Two kinds of simulated person:

- **same source**: answers drawn from the trait table that re-weights (exact, or 10% / 25% of them
  replaced by a wrong option): an upper bound, since the table agrees with itself;
- **held-out source**: each answer drawn from ONE source's own word for the true species (Wikipedia,
  Wagner 2021 or FungalTraits, whichever cover that trait of that species, picked at random) while the
  product re-weights with the table built *without* that source. Only questions that two sources cover
  can be asked this way. A person's answer comes from the mushroom, not from our table: this is the
  closer stand-in.

On cross-source **validation** this fits the mismatch weight per question (from how often one source's
word contradicts the others', scaled on validation), picks the question strategy and fits a temperature
on the answered posterior (so that its probabilities stay calibrated after answers); **test** numbers are
reported for that choice only. ``--write`` stores ``field_questions`` in the model's config.json.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from mushroom_id.core.questions import INSTANT_KEYS, QUESTION_KEYS, QUESTIONS, FieldEvidence
from mushroom_id.core.traits import BASES, BASIS
from mushroom_id.engine.evaluation import species_mean_accuracy

NOISE_LEVELS = (0.0, 0.10, 0.25)
MISMATCH_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)
SCALES = (0.5, 1.0, 2.0)  # multipliers of the per-question weights tried on validation
TEMPERATURES = (0.75, 0.85, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
STRATEGIES = (
    "info_gain",
    "gain_per_effort",
    "top5_gain",
    "fixed:hymenium,stem_base,stipe,ecology,gill_attachment,cap_colour,gill_colour,bruising,cap_size,season",
)
MAX_ANSWERS = 5  # instant answers; the spore print comes after them
LATER = ("spore_print",)


def simulated_answers(field: FieldEvidence, y: np.ndarray, noise: float, seed: int = 0) -> list[dict[str, str | None]]:
    """Same-source person: question -> the answer given (None: "not sure", the species' trait is unknown).

    The exact answer is an offered option that fits the true species' known trait (drawn among them when
    several fit); with probability ``noise`` it is replaced by another offered option. The draws depend on
    the seed and the photo only, so every strategy meets the same person."""
    rng = np.random.default_rng(seed)
    out = []
    for label in y:
        person: dict[str, str | None] = {}
        for key in QUESTION_KEYS:
            shown = field.shown[key]
            fits = [i for i in shown if field.known[key][label] and field.L[key][i, label] >= 1.0]
            person[key] = _draw(rng, key, shown, fits, noise)
        out.append(person)
    return out


def _draw(rng, key: str, shown: list[int], fits: list[int], noise: float) -> str | None:
    flip, pick_wrong, pick = rng.random(), rng.random(), rng.random()  # drawn always: the same stream
    if not fits:
        return None
    chosen = fits[int(pick * len(fits))]
    if flip < noise:
        others = [i for i in shown if i not in fits]
        chosen = others[int(pick_wrong * len(others))] if others else chosen
    return QUESTIONS[key].options[chosen].value


def two_source_keys(traits) -> tuple[str, ...]:
    """Questions whose trait at least two independent sources give (the held-out-source rows ask these)."""
    seen: dict[str, set[str]] = {}
    for name in traits.names:
        for key in QUESTION_KEYS:
            seen.setdefault(key, set()).update(BASIS[s] for s in traits.by_source(name, QUESTIONS[key].trait))
    return tuple(k for k in QUESTION_KEYS if len(seen.get(k, ())) >= 2)


def held_out_answers(
    field: FieldEvidence,
    traits,
    names: list[str | None],
    y: np.ndarray,
    noise: float,
    seed: int = 0,
    fields: dict[str, FieldEvidence] | None = None,
) -> list[dict[str, tuple[str, str] | None]]:
    """Held-out-source person: question -> (answer, the source it came from), or None.

    ``names``: the catalog name of each label. For each question one source that knows the true species'
    trait is picked at random and the answer drawn from its own values (then flipped with ``noise``).
    With ``fields`` (the tables without each source) only answers that the other sources can judge
    (they know the true species' trait) are kept: the pairs where source disagreement alone is measured."""
    rng = np.random.default_rng(seed)
    keys = two_source_keys(traits)
    out = []
    for label in y:
        name = names[label]
        person: dict[str, tuple[str, str] | None] = {}
        for key in keys:
            q = QUESTIONS[key]
            by_basis: dict[str, set[str]] = {}
            for source, values in (traits.by_source(name, q.trait) if name else {}).items():
                by_basis.setdefault(BASIS[source], set()).update(values)
            pick_source = rng.random()
            if not by_basis:
                rng.random(3)
                person[key] = None
                continue
            basis = sorted(by_basis)[int(pick_source * len(by_basis))]
            fits = [i for i in field.shown[key] if q.options[i].matches & by_basis[basis]]
            value = _draw(rng, key, field.shown[key], fits, noise)
            judged = fields is None or bool(fields[basis].known[key][label])
            person[key] = (value, basis) if value and judged else None
        out.append(person)
    return out


@dataclass
class Run:
    """The re-weighted probabilities after 0..steps questions, then with the later ones (the spore print)
    added, and which question came first."""

    probs: list[np.ndarray]  # per step: (N, C)
    first: list[str | None]  # per photo: the first question asked
    later: np.ndarray | None = None  # (N, C): after the steps and the spore print


@dataclass
class _Answering:
    """One person's answers so far and the re-weighted probabilities they give."""

    field: FieldEvidence
    fields: dict[str, FieldEvidence]
    post: np.ndarray
    answers: dict[str, str] = dataclass_field(default_factory=dict)
    factors: list[np.ndarray] = dataclass_field(default_factory=list)

    def __post_init__(self):
        self.photo = self.post

    def add(self, key: str, given) -> None:
        if not given:  # "not sure": asked, no evidence
            return
        value, source = given if isinstance(given, tuple) else (given, None)
        self.answers[key] = value
        self.factors.append((self.fields[source] if source else self.field).likelihood(key, value))
        self.post = self.field.reweight(self.photo, {}, self.factors)


def ask_sequence(
    field: FieldEvidence,
    probs: np.ndarray,
    people: list[dict],
    strategy: str,
    steps: int = MAX_ANSWERS,
    only: tuple[str, ...] | None = None,
    later: tuple[str, ...] = (),
    fields: dict[str, FieldEvidence] | None = None,
) -> Run:
    """Ask up to ``steps`` questions (among ``only``; None: all) one after another, the next chosen by
    ``strategy`` on the current answer; a person's answer is a value (same source) or (value, source):
    then it re-weights with ``fields[source]``, the table without that source."""
    p0s = np.asarray(probs, dtype=np.float64)
    per_step = [np.empty_like(p0s) for _ in range(steps)]
    after = np.empty_like(p0s) if later else None
    first: list[str | None] = []
    for n, (p0, person) in enumerate(zip(p0s, people, strict=True)):
        state = _Answering(field, fields or {}, p0)
        asked: list[str] = []
        for step in range(steps):
            scores = field.question_scores(state.post, state.answers, strategy, skip=asked, only=only)
            if scores:
                key = max(scores, key=lambda k: (scores[k], -QUESTION_KEYS.index(k)))
                asked.append(key)
                state.add(key, person.get(key))
            if step == 0:
                first.append(asked[0] if asked else None)
            per_step[step][n] = state.post
        if after is not None:
            for key in later:
                state.add(key, person.get(key))
            after[n] = state.post
    return Run([p0s] + per_step, first, after)


def balanced(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"top1": species_mean_accuracy(probs, y, 1), "top5": species_mean_accuracy(probs, y, 5)}


def rows_for(run: Run, y: np.ndarray) -> dict:
    out = {
        "by_answers": [balanced(p, y) for p in run.probs],
        "first_questions": {str(k): run.first.count(k) for k in set(run.first)},
    }
    if run.later is not None:
        out["with_spore_print"] = balanced(run.later, y)
    return out


def evaluate_strategy(field, probs, y, strategy, seed=0, only=INSTANT_KEYS, later=LATER) -> dict:
    """Same-source rows per noise level: species-balanced top-1/top-5 after 0..5 instant answers, then
    with the spore print added."""
    rows = {}
    for noise in NOISE_LEVELS:
        people = simulated_answers(field, y, noise, seed)
        rows[f"{noise:.2f}"] = rows_for(ask_sequence(field, probs, people, strategy, only=only, later=later), y)
    return rows


def evaluate_held_out(field, fields, traits, names, probs, y, strategy, seed=0, noises=(0.0, 0.10)) -> dict:
    """Held-out-source rows per noise level (only questions two sources cover; spore print added last)."""
    keys = two_source_keys(traits)
    only = tuple(k for k in INSTANT_KEYS if k in keys)
    rows = {}
    for noise in noises:
        people = held_out_answers(field, traits, names, y, noise, seed)
        run = ask_sequence(field, probs, people, strategy, only=only, later=LATER, fields=fields)
        rows[f"{noise:.2f}"] = rows_for(run, y)
    return rows


def evaluate_matched(field, fields, traits, names, probs, y, strategy, seed=0) -> dict:
    """Source disagreement alone: held-out-source answers only where the other sources know the true
    species' trait, beside same-source answers to exactly those questions of those photos."""
    only = tuple(k for k in INSTANT_KEYS if k in two_source_keys(traits))
    held = held_out_answers(field, traits, names, y, 0.0, seed, fields=fields)
    exact = simulated_answers(field, y, 0.0, seed)
    same = [{k: (exact[n][k] if v else None) for k, v in person.items()} for n, person in enumerate(held)]
    return {
        "held-out source": rows_for(
            ask_sequence(field, probs, held, strategy, only=only, later=LATER, fields=fields), y
        ),
        "same source": rows_for(ask_sequence(field, probs, same, strategy, only=only, later=LATER), y),
    }


def selection_score(rows: dict) -> float:
    """Mean over the noise levels and 1-5 answers of top-1 + top-5 (validation only)."""
    vals = [
        r["by_answers"][k]["top1"] + r["by_answers"][k]["top5"]
        for r in rows.values()
        for k in range(1, len(r["by_answers"]))
    ]
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- fitting


def source_mismatch_weights(traits, floor: float = 0.02, cap: float = 0.5) -> dict[str, float]:
    """Per question: the likelihood ratio of a contradicting answer to a fitting one, when the answer comes
    from one source and the table from the others, over every catalog species both know.

    With r the share of one source's answers that contradict the rest of the table, K offered options
    and m of them fitting on average: w = (r / (K - m)) / ((1 - r) / m)."""
    out = {}
    for key, q in QUESTIONS.items():
        shown = [o for o in q.options if not o.hidden]
        contra = fit = 0
        m_total = 0.0
        for name in traits.names:
            by = traits.by_source(name, q.trait)
            for basis in {BASIS[s] for s in by}:
                mine = set().union(*(v for s, v in by.items() if BASIS[s] == basis))
                rest = set().union(*(v for s, v in by.items() if BASIS[s] != basis)) if len(by) > 1 else set()
                if not rest:
                    continue
                answers = [o for o in shown if o.matches & mine]
                fitting = [o for o in shown if o.matches & rest or o.missed & rest]
                for o in answers:
                    ok = o.matches & rest or o.missed & rest
                    fit += bool(ok)
                    contra += not ok
                    m_total += len(fitting)
        n = fit + contra
        if n < 20:
            continue
        r = min(max(contra / n, 1e-3), 0.999)
        m = m_total / n
        w = (r / max(len(shown) - m, 1e-9)) / ((1 - r) / max(m, 1e-9))
        out[key] = float(min(max(w, floor), cap))
    return out


def temper(probs: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.maximum(probs, 1e-300)) / t
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(posteriors: list[np.ndarray], y: np.ndarray) -> float:
    """The answer temperature that minimises the NLL of the true species over the answered posteriors."""
    from mushroom_id.engine.metrics import nll

    stacked = np.concatenate(posteriors)
    ys = np.concatenate([y] * len(posteriors))
    return min(TEMPERATURES, key=lambda t: nll(temper(stacked, t), ys))


# ----------------------------------------------------------------------------- data


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
    from mushroom_id.engine.calibration import fit_temperature as fit_photo_temperature
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
    t = fit_photo_temperature(*out[temperature_split])
    return softmax(out[split][0], t), out[split][1]


# ----------------------------------------------------------------------------- report


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
    """One line per noise level of ``rows`` (as :func:`evaluate_strategy` returns them)."""
    n = max(len(r["by_answers"]) for r in rows.values())
    later = any("with_spore_print" in r for r in rows.values())
    lines = [f"| {title} | " + " | ".join(f"{k}" for k in range(n)) + (" | + spore print |" if later else " |")]
    lines.append("|---|" + "---:|" * (n + later))
    for noise, r in rows.items():
        cells = [cell(m) for m in r["by_answers"]] + ([cell(r["with_spore_print"])] if later else [])
        lines.append(f"| {'exact' if float(noise) == 0 else f'{float(noise):.0%} wrong'} | " + " | ".join(cells) + " |")
    return lines


def headline(named_rows: list[tuple[str, dict]]) -> list[str]:
    """The README's first table: one line per (name, row)."""
    lines = [
        "| answers (cross-source test) | photo only | 1 | 2 | 3 | 4 | 5 instant | + spore print |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in named_rows:
        cells = [cell(m) for m in r["by_answers"]] + [cell(r["with_spore_print"]) if "with_spore_print" in r else "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def calibration_rows(t: float, run: Run, y: np.ndarray, confident: float) -> list[dict]:
    """Per number of answers: ECE before/after the answer temperature, and how often "confident" is
    reached (top probability >= the model's confident threshold) and right."""
    from mushroom_id.engine.metrics import expected_calibration_error

    out = []
    for k, p in enumerate(run.probs):
        pt = temper(p, t) if k else p
        sure = pt.max(1) >= confident
        out.append(
            {
                "answers": k,
                "ece_untempered": expected_calibration_error(p, y),
                "ece": expected_calibration_error(pt, y),
                "max_probability": float(pt.max()),
                "confident_share": float(sure.mean()),
                "confident_right": float((pt.argmax(1) == y)[sure].mean()) if sure.any() else None,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    from mushroom_id.core.catalog import default_catalog
    from mushroom_id.core.models import write_config
    from mushroom_id.core.safety import Thresholds
    from mushroom_id.core.traits import default_traits
    from mushroom_id.engine.metrics import reliability_bins
    from mushroom_id.engine.plots import reliability_diagram

    parser = argparse.ArgumentParser(prog="python -m mushroom_id.engine.field_eval", description=__doc__)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--floor", action="store_true", help="also the Lite0 class-mean floor (computes features)")
    parser.add_argument("--write", action="store_true", help="store the fitted settings in the model's config.json")
    parser.add_argument("--out", default="reports", help="field_questions.json, .md and .png go here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    loaded, data, held = held_out(args.model, args.seed)
    traits, catalog = default_traits(), default_catalog()
    labels = loaded.labels
    names = [catalog.resolve(n) for n in labels]
    pv, yv = held["validation"]
    pt, yt = held["test"]
    print(f"cross-source photos: validation {len(yv)} ({len(set(yv))} species), test {len(yt)} ({len(set(yt))})")

    def fields_for(mismatch, t=1.0):
        full = FieldEvidence.for_labels(labels, traits, catalog.resolve, mismatch, t)
        without = {b: FieldEvidence.for_labels(labels, traits.without(b), catalog.resolve, mismatch, t) for b in BASES}
        return full, without

    # 1. the mismatch weights: one for all (as before) or per question from the sources' disagreement, scaled
    per_question = source_mismatch_weights(traits)
    candidates = {f"one weight {w}": w for w in MISMATCH_GRID}
    candidates |= {f"per question x{s}": {k: min(1.0, w * s) for k, w in per_question.items()} for s in SCALES}
    grid = {}
    for name, mismatch in candidates.items():
        full, without = fields_for(mismatch)
        same = evaluate_strategy(full, pv, yv, "info_gain")
        other = evaluate_held_out(full, without, traits, names, pv, yv, "info_gain")
        grid[name] = selection_score(same) / 2 + selection_score(other) / 2
        print(f"validation  {name:22s} {grid[name]:.4f}")
    chosen = max(grid, key=grid.get)
    mismatch = candidates[chosen]
    full, without = fields_for(mismatch)
    # 2. the question strategy, on held-out-source and same-source answers
    strategies = {}
    for s in STRATEGIES:
        strategies[s] = (
            selection_score(evaluate_strategy(full, pv, yv, s)) / 2
            + selection_score(evaluate_held_out(full, without, traits, names, pv, yv, s)) / 2
        )
        print(f"validation  {s[:60]:60s} {strategies[s]:.4f}")
    strategy = max(strategies, key=strategies.get)
    # 3. the answer temperature, on validation's held-out-source answers after 1-5 answers
    only = tuple(k for k in INSTANT_KEYS if k in two_source_keys(traits))
    posts = []
    for noise in (0.0, 0.10):
        people = held_out_answers(full, traits, names, yv, noise, args.seed)
        run = ask_sequence(full, pv, people, strategy, only=only, fields=without)
        posts += run.probs[1:]
    temperature = fit_temperature(posts, yv)
    print(f"chosen: mismatch {chosen}, strategy {strategy}, answer temperature {temperature}")

    # test: every row, with the chosen settings (and the temperature: what the app shows)
    full, without = fields_for(mismatch, temperature)
    same = evaluate_strategy(full, pt, yt, strategy)
    other = evaluate_held_out(full, without, traits, names, pt, yt, strategy)
    blind = evaluate_strategy(full, pt, yt, "info_gain", only=None, later=())  # as before: the print may be first
    matched = evaluate_matched(full, without, traits, names, pt, yt, strategy)
    named = [
        ("same source, exact", same["0.00"]),
        ("same source, 10% wrong", same["0.10"]),
        ("same source, 25% wrong", same["0.25"]),
        ("held-out source, exact", other["0.00"]),
        ("held-out source, 10% wrong", other["0.10"]),
        ("effort ignored (spore print may come first), same source, exact", blind["0.00"]),
        ("where another source knows the trait: held-out source, exact", matched["held-out source"]),
        ("the same questions of the same photos: same source, exact", matched["same source"]),
    ]
    report = {
        "model": loaded.model_id,
        "photos": {"validation": int(len(yv)), "test": int(len(yt))},
        "species": {"validation": int(len(set(yv))), "test": int(len(set(yt)))},
        "validation_mismatch": grid,
        "validation_strategy": strategies,
        "chosen": {"mismatch": mismatch, "mismatch_choice": chosen, "strategy": strategy, "temperature": temperature},
        "two_source_questions": list(two_source_keys(traits)),
        "test_same_source": same,
        "test_held_out_source": other,
        "test_effort_ignored": blind,
        "test_matched": matched,
        "trait_coverage_of_labels": traits.coverage([n or "" for n in names]),
    }
    if args.floor:
        fp, fy = floor_probs(data, "test")
        report["floor_same_source"] = evaluate_strategy(full, fp, fy, strategy)
        report["floor_held_out_source"] = evaluate_held_out(full, without, traits, names, fp, fy, strategy)
        named += [
            ("Lite0 class-mean floor, same source, exact", report["floor_same_source"]["0.00"]),
            ("Lite0 class-mean floor, held-out source, exact", report["floor_held_out_source"]["0.00"]),
        ]

    # calibration after answers: held-out-source answers on test, before and after the temperature
    plain, plain_without = fields_for(mismatch, 1.0)
    people = held_out_answers(plain, traits, names, yt, 0.0, args.seed)
    run = ask_sequence(plain, pt, people, strategy, only=only, fields=plain_without)
    confident = Thresholds.from_config(loaded.config).confident
    report["calibration"] = calibration_rows(temperature, run, yt, confident)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    k3 = run.probs[3]
    reliability_diagram(
        {
            "photo only": reliability_bins(pt, yt, 10),
            "3 answers, untempered": reliability_bins(k3, yt, 10),
            f"3 answers, T={temperature}": reliability_bins(temper(k3, temperature), yt, 10),
        },
        out / "field_calibration.png",
        "after held-out-source answers (cross-source test)",
    )

    lines = [
        f"# Field questions on cross-source test ({len(yt)} photos, {len(set(yt))} species; species-balanced)",
        "",
        f"Model `{loaded.model_id}`. Chosen on cross-source validation: mismatch `{chosen}`, strategy "
        f"`{strategy}`, answer temperature {temperature}. Cells: top-1 / top-5 after 0-5 instant answers "
        "(seconds, mushroom in hand), then with the spore print added. Held-out-source rows ask only the "
        f"questions two sources cover ({', '.join(two_source_keys(traits))}).",
        "",
        *headline(named),
        "",
        "Calibration after held-out-source answers (ECE of the top probability, before -> after the answer "
        "temperature; 'confident' = top probability at or above the model's confident threshold "
        f"{confident:.2f}):",
        "",
        "| answers | ECE | highest probability | confident (right) |",
        "|---:|---:|---:|---:|",
    ]
    for c in report["calibration"]:
        right = "-" if c["confident_right"] is None else f"{c['confident_right']:.0%}"
        lines.append(
            f"| {c['answers']} | {c['ece_untempered']:.3f} -> {c['ece']:.3f} | {c['max_probability']:.3f} | "
            f"{c['confident_share']:.1%} ({right}) |"
        )
    lines += ["", f"First questions (same source, exact): {same['0.00']['first_questions']}"]
    save_report(args.out, "field_questions", report, lines)
    if args.write:
        if loaded.folder is None:
            raise SystemExit("--write needs a model folder (embedded or local-dir:)")
        settings = {"mismatch": mismatch, "strategy": strategy, "temperature": temperature}
        kept = loaded.config.get("field_questions") or {}  # the danger weight is danger_eval's fit
        write_config(loaded.folder, {**loaded.config, "field_questions": {**kept, **settings}})
        print(f"wrote field_questions to {loaded.folder / 'config.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
