"""all: run species -> crawl -> dedup -> normalize -> split -> publish with one set of options.

Every stage is resumable, so rerunning ``all`` after a crash (or after adding species) redoes only
what is missing. ``--skip-species`` keeps an existing species.csv (e.g. one made with --candidates).
"""

from __future__ import annotations

import argparse
import importlib

from .common import add_common_arguments

CHAIN = ("species", "crawl", "dedup", "normalize", "split", "publish")


def _module(stage: str):
    return importlib.import_module(f".{stage}", __package__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--skip-species", action="store_true", help="keep the existing species.csv")
    for stage in CHAIN:
        _module(stage).add_stage_arguments(parser)


def run(args: argparse.Namespace) -> int:
    for stage in CHAIN:
        if stage == "species" and args.skip_species and (args.work_dir / "species.csv").is_file():
            continue
        print(f"\n### {stage}", flush=True)
        code = _module(stage).run(args)
        if code:
            return int(code)
    return 0
