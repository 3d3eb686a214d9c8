"""Assemble a deployable Hugging Face Space folder from this repository.

    python -m mushroom_id.space check                       # validate space_config/
    python -m mushroom_id.space build dist/space            # assemble the Space folder
    python -m mushroom_id.space build dist/space --examples my_photos/ --force
    cd dist/space && python app.py                           # it runs as is, offline
    hf upload <org>/<space> dist/space . --repo-type space   # deploy (network and a token needed)

The folder holds ``app.py``, the core package ``mushroom_id/`` (with the species catalog and the
embedded model), ``README.md`` (the Space configuration, from ``space_config/README.md``),
``requirements.txt`` (from ``space_config/``), ``.gitattributes`` (binary files through LFS),
``reference_photos/`` (small thumbnails of the licence-clean reference photos and the captioned
example photos, made from ``../shared/data/photos`` at build time, with their credits in
``index.json``; left out with ``--no-photos`` or when ``../shared`` is absent) and, if given,
``examples/`` (your own example photos; they replace the default ones). Nothing is edited by hand in
the output: rebuild it.
"""

from __future__ import annotations

import argparse
import json
import sys

from mushroom_id.core.paths import shared_photos_dir
from mushroom_id.serving.bundle import (
    REFERENCE_DIR,
    build_space,
    check_space_config,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mushroom_id.space", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate space_config/")
    build = sub.add_parser("build", help="assemble a deployable Space folder")
    build.add_argument("out_dir")
    build.add_argument("--examples", help="a folder of example photos to ship (you must hold their rights)")
    build.add_argument("--force", action="store_true", help="replace an earlier build in out_dir")
    build.add_argument(
        "--no-photos", action="store_true", help="leave out the reference and example photos made from ../shared"
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check_space_config()
        for p in problems:
            print(f"problem: {p}", file=sys.stderr)
        print("space_config OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    try:
        out = build_space(args.out_dir, examples=args.examples, force=args.force, photos=not args.no_photos)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    index = out / REFERENCE_DIR / "index.json"
    if index.is_file():
        made = json.loads(index.read_text(encoding="utf-8"))
        print(f"reference photos: {len(made['photos'])} species, {len(made['examples'])} example photos (with credits)")
    elif not args.no_photos:
        print(f"no reference photos: {shared_photos_dir()} not found (the app runs without them)")
    print(f"Space folder ready: {out} ({size / 1e6:.1f} MB). Try it: cd {out} && python app.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
