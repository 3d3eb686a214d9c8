"""all: every stage: species -> crawl -> dedup -> normalize -> split -> publish (--from DIR: ingest -> dedup -> ...)

With ``--from DIR`` the chain is ingest -> dedup -> normalize -> split -> publish (no species, no crawl).

Every stage is resumable, so rerunning ``all`` after a crash (or after adding species) redoes only
what is missing. ``--skip-species`` keeps an existing species.csv (e.g. one made with --candidates).
``--from FOLDER`` takes in a local folder of photos instead of crawling (species and crawl are replaced
by ``ingest``): ``python -m data_prep all --from ../shared/data/photos --work-dir artifacts/shared-photos``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path

from .common import add_common_arguments, atomic_write_bytes, atomic_write_text, default_workers

CHAIN = ("species", "crawl", "dedup", "normalize", "split", "publish")
LOCAL_CHAIN = ("ingest", "dedup", "normalize", "split", "publish")
# Bump when a stage's output for the same input changes (prepared folders are then rebuilt).
PREPARE_VERSION = "2026-12-07.left-out.6"  # .6: every file of a class folder looked at, left_out.csv; .5: joint pass
# Caches keyed by content (and named after what made them) that a rebuild keeps: a new PREPARE_VERSION or a
# changed manifest re-runs the stages, not the hashing and embedding of photos it has already seen.
KEPT_CACHES = ("cache/phash.jsonl", "cache/embeddings-*.npz")


def _module(stage: str):
    return importlib.import_module(f".{stage}", __package__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--skip-species", action="store_true", help="keep the existing species.csv")
    for stage in (*CHAIN, "ingest"):
        _module(stage).add_stage_arguments(parser)


def run(args: argparse.Namespace, stages: tuple[str, ...] | None = None) -> int:
    chain = stages or (LOCAL_CHAIN if getattr(args, "source_dir", None) else CHAIN)
    for stage in chain:
        if stage == "species" and args.skip_species and (args.work_dir / "species.csv").is_file():
            continue
        print(f"\n### {stage}", flush=True)
        code = _module(stage).run(args)
        if code:
            return int(code)
    return 0


def prepare_folder(
    folder: Path, work_dir: Path, seed: int = 0, workers: int | None = None, quiet: bool = False, crops: bool = True
) -> Path:
    """Ingest, dedup, normalize and split a local photo folder into ``work_dir`` (no publish), once.

    ``crops``: also group crops and re-shot copies by backbone embeddings (``dedup --cnn``: the
    embeddings dominate the build, about 3 images/s on a loaded 2-core box; cached by content in the
    work folder and kept across rebuilds, see :data:`KEPT_CACHES`).

    Reused while the folder's manifest (or file listing) and :data:`PREPARE_VERSION` are unchanged;
    rebuilt otherwise.
    This is how ``shared-photos`` (the data spec of training, evaluation, trust fitting and benchmarks)
    becomes one manifest with one split.
    """
    folder, work_dir = Path(folder), Path(work_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found (the shared photos live in ../shared/data/photos)")
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        listing = manifest.read_bytes()
    else:  # <Genus_species>/* folders: names and sizes stand for the content
        listing = "\n".join(
            f"{p.relative_to(folder).as_posix()}:{p.stat().st_size}" for p in sorted(folder.glob("*/*")) if p.is_file()
        ).encode()
    key = hashlib.sha256(listing + f"|{PREPARE_VERSION}|{seed}|{crops}".encode()).hexdigest()
    stamp = work_dir / "prepared.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key and (work_dir / "manifest.csv").is_file():
        print(f"using {folder} as prepared in {work_dir} (delete that folder to rebuild)", file=sys.stderr)
        _tell_left_out(folder, work_dir)
        return work_dir
    if work_dir.exists():
        kept = {p.relative_to(work_dir): p.read_bytes() for pattern in KEPT_CACHES for p in work_dir.glob(pattern)}
        shutil.rmtree(work_dir)
        for rel, data in kept.items():
            atomic_write_bytes(work_dir / rel, data)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--work-dir",
            str(work_dir),
            "--from",
            str(folder),
            "--seed",
            str(seed),
            "--workers",
            str(workers or default_workers()),
            *(["--cnn"] if crops else []),
        ]
    )
    print(f"preparing {folder} -> {work_dir} (ingest, dedup, normalize, split; once)", file=sys.stderr, flush=True)
    if quiet:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            code = run(args, stages=LOCAL_CHAIN[:-1])
    else:
        code = run(args, stages=LOCAL_CHAIN[:-1])
    if code:
        raise RuntimeError(f"preparing {folder} failed (exit code {code})")
    atomic_write_text(stamp, json.dumps({"key": key, "folder": str(folder), "version": PREPARE_VERSION}))
    _tell_left_out(folder, work_dir)
    return work_dir


def _tell_left_out(folder: Path, work_dir: Path) -> None:
    """Name on stderr every file of the user's folder that could not be used (not an image, corrupt, too
    small...) by the user's own path, even when the stages ran quietly; duplicates and photos of species
    outside the catalog are counted. All of them, each with its reason, are in ``left_out.csv``."""
    from collections import Counter

    from .common import LEFT_OUT_REPORT, print_left_out, read_csv, reason_kind

    report = work_dir / LEFT_OUT_REPORT
    if not report.is_file():
        return
    entries = list(read_csv(report))
    unusable = [e for e in entries if e["stage"] in ("ingest", "normalize") and "catalog species" not in e["reason"]]
    print_left_out(unusable, f"{len(unusable)} files of {folder} cannot be used", report, file=sys.stderr)
    others = Counter(reason_kind(e["reason"]) for e in entries if e not in unusable)
    if others:
        counted = ", ".join(f"{n} {why}" for why, n in others.most_common())
        print(f"also left out: {counted} (each file named in {report})", file=sys.stderr)
