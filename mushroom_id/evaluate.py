"""Evaluate saved models on a dataset split: metrics JSON, per-species CSV, PNG plots.

    python -m mushroom_id.evaluate --model embedded --data shared-photos --split test   # -> runs/eval/...
    python -m mushroom_id.evaluate --model local-dir:runs/lite0/model --data path/to/hub_dataset --split test \\
        --history runs/lite0/metrics.json
    # the README's first table: side by side on the same cross-source test photos, with the floor
    python -m mushroom_id.evaluate --data shared-photos --split test --nearest-centroid --model embedded \\
        --candidates artifacts/candidates --model local-dir:runs/lite0_embedded/model --out artifacts/eval/cross_source

Without ``--out`` the files go beside the model's train.py run (``runs/<name>/eval-<data>-<split>``) or to
``runs/eval/<model>-<data>-<split>``, and the comparison to ``runs/eval/comparison.md``.
Metrics (all from ``mushroom_id.engine.metrics``): top-1, top-5, species-mean top-1/top-5, loss, macro-F1,
toxic-predicted-as-non-toxic rate, FungiCLEF cost, ECE before/after temperature, most-confused pairs.
The temperature is the model's own (fit on validation at training time) unless
``--fit-temperature-on <split>`` refits it here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.models import load_model
from mushroom_id.engine.comparison import (
    comparison_tables,
    evaluate_loaded,
    load_history,
    nearest_centroid_metrics,
)
from mushroom_id.engine.data import load_splits
from mushroom_id.engine.evaluation import default_eval_dir, run_history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mushroom_id.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="embedded | local-dir:<path> | hf-hub:<repo> | keras:<file>; repeat to compare models",
    )
    parser.add_argument(
        "--candidates",
        default=None,
        help="also every model folder under this folder (e.g. artifacts/candidates from "
        "`python -m mushroom_id build-embedded`)",
    )
    parser.add_argument("--data", required=True, help="shared-photos | Hub-layout folder | image folder | org/name")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", default=None, help="output folder (one subfolder per model when comparing)")
    parser.add_argument("--fit-temperature-on", default=None, help="refit the temperature on this split")
    parser.add_argument("--history", default=None, help="metrics.json/csv of the training run: training curves")
    parser.add_argument("--nearest-centroid", action="store_true", help="add the frozen-feature centroid baseline")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.candidates:
        args.model += [f"local-dir:{p.parent}" for p in sorted(Path(args.candidates).glob("*/config.json"))]
    if not args.model:
        parser.error("name at least one --model (or --candidates DIR)")

    catalog = default_catalog()
    results, data = [], None
    for i, spec in enumerate(args.model):
        loaded = load_model(spec)
        if data is None or data.labels != loaded.labels:
            data = load_splits(args.data, labels=loaded.labels, catalog=catalog)
        if args.out:
            out = Path(args.out) / (f"{i}_{loaded.model_id}" if len(args.model) > 1 else "")
        else:  # beside the model's train.py run, or runs/eval/<model>-<data>-<split> (git-ignored)
            out = default_eval_dir(loaded.folder, loaded.model_id, args.data, args.split)
        history = load_history(args.history) if args.history else run_history(loaded.folder)[0]
        metrics = evaluate_loaded(
            loaded,
            data,
            args.split,
            out,
            args.fit_temperature_on,
            history,
            batch_size=args.batch_size,
            workers=args.workers,
            catalog=catalog,
        )
        metrics["spec"] = spec
        results.append(metrics)
    if args.nearest_centroid:
        results.insert(0, nearest_centroid_metrics(data, args.split, catalog))
    table = comparison_tables(results)
    summary_dir = Path(args.out or "runs/eval")
    summary_dir.mkdir(parents=True, exist_ok=True)
    (summary_dir / "comparison.md").write_text(table + "\n")
    (summary_dir / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    written = ", ".join(str(r["out_dir"]) for r in results if r.get("out_dir"))
    print(f"\nper-model metrics, per-species CSV and plots: {written}", file=sys.stderr)
    print(f"comparison: {summary_dir / 'comparison.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
