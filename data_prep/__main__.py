"""``python -m data_prep <stage> [options]``: one subcommand per data-preparation stage.

A stage is a module in this package exposing ``add_arguments(parser)`` and ``run(args) -> int | None``.
Adding a stage (species, crawl, dedup, normalize, split, publish) means adding its module name to
``STAGES``. Stage modules import heavy or optional dependencies inside ``run`` so that building
this CLI (which imports every stage module for its arguments) stays fast and never breaks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .common import remove_stale_temp_files

# stage name -> module (relative to this package), in pipeline order
STAGES: dict[str, str] = {
    "catalog": ".catalog",
    "traits": ".traits",
    "species": ".species",
    "crawl": ".crawl",
    "ingest": ".ingest",
    "dedup": ".dedup",
    "normalize": ".normalize",
    "split": ".split",
    "publish": ".publish",
    "map": ".scale_out",
    "all": ".pipeline",
}


def _load(stage: str):
    return importlib.import_module(STAGES[stage], __package__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description="Run one data-preparation stage.")
    sub = parser.add_subparsers(dest="stage", metavar="stage", required=True)
    for stage in STAGES:
        module = _load(stage)
        summary = (module.__doc__ or stage).strip().splitlines()[0]
        stage_parser = sub.add_parser(stage, help=summary, description=summary)
        module.add_arguments(stage_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work_dir = getattr(args, "work_dir", None)
    if work_dir is not None and Path(work_dir).is_dir():
        removed = remove_stale_temp_files(work_dir)
        if removed:
            print(f"removed {removed} temporary file(s) left by an interrupted run", file=sys.stderr)
    try:
        return int(_load(args.stage).run(args) or 0)
    except FileNotFoundError as e:  # a missing input of an earlier stage: say which, no traceback
        print(f"python -m data_prep {args.stage}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
