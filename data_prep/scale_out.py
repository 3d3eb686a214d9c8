"""map: run a heavy per-image stage (PHash, normalize) through Hugging Face ``datasets.map(num_proc=...)``.

    python -m data_prep map --task phash --num-proc 16          # then: python -m data_prep dedup
    python -m data_prep map --task normalize --num-proc 16      # then: python -m data_prep normalize

The per-image work of ``dedup`` (PHash + mirror PHash of each raw file) and ``normalize`` (decode, EXIF,
resize, JPEG) is independent per image. This command runs exactly that work, as ``datasets.map`` over the
manifest rows it is still missing for, with ``num_proc`` processes (datasets' own pool, its progress bar,
its sharding), and appends each result to the same journal the stage keeps (``cache/phash.jsonl``,
``cache/normalize.jsonl``). The stage run afterwards finds every image done and only does its
whole-manifest part (pair search and grouping; duplicate check and manifest update), so both ways give the
same manifest. The stages' own ``--workers`` pool does the same on one machine. Across machines use
``--engine ray`` on the stages themselves (:mod:`data_prep.ray_engine`: the same ``batch -> batch``
functions as Ray Data pipelines on Parquet)::

    ray start --head && python -m data_prep all --from photos/ --engine ray --address auto
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Journal, Manifest, add_common_arguments, report

TASKS = ("phash", "normalize")


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    from .normalize import add_stage_arguments as normalize_arguments

    g = parser.add_argument_group("map")
    g.add_argument("--task", choices=TASKS, default="phash", help="the per-image work to run")
    g.add_argument("--num-proc", type=int, default=None, help="datasets.map processes (default: --workers)")
    g.add_argument("--batch-size", type=int, default=64, help="images per datasets.map batch")
    normalize_arguments(parser)  # --size, --resize, --quality, --min-side-px: the journal key includes them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def phash_batch(batch: dict, work_dir: str) -> dict:
    """``{"sha256": [...], "raw_path": [...]}`` -> the same plus ``phash`` and ``mirror`` (dedup's work)."""
    from .near_duplicates import phash_pair

    pairs = [phash_pair(str(Path(work_dir) / p)) for p in batch["raw_path"]]
    return {**batch, "phash": [c for c, _ in pairs], "mirror": [m for _, m in pairs]}


def normalize_batch(batch: dict, settings: dict) -> dict:
    """``{"key", "image_id", "src", "dst"}`` lists -> normalize's journal records as columns (``record``: JSON)."""
    import json

    from . import normalize

    normalize._SETTINGS.update(settings)
    records = [
        normalize._normalize_one(item)
        for item in zip(batch["key"], batch["image_id"], batch["src"], batch["dst"], strict=True)
    ]
    return {"key": batch["key"], "record": [json.dumps(r, sort_keys=True) for r in records]}


def _map(columns: dict, fn, num_proc: int, batch_size: int, fn_kwargs: dict, desc: str):
    import datasets

    ds = datasets.Dataset.from_dict(columns)
    return ds.map(
        fn,
        batched=True,
        batch_size=batch_size,
        num_proc=max(1, min(num_proc, len(ds))) if num_proc > 1 else None,
        fn_kwargs=fn_kwargs,
        desc=desc,
        remove_columns=ds.column_names,
    )


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from .common import species_dir_name

    work_dir: Path = args.work_dir
    rows = [r for r in Manifest(work_dir).rows() if r["status"] == "ok" and r["raw_path"]]
    num_proc = args.num_proc or args.workers
    t0 = time.perf_counter()
    if args.task == "phash":
        journal = Journal(work_dir / "cache" / "phash.jsonl", key="sha256")
        done = {k for k, v in journal.load().items() if "mirror" in v}
        todo = {r["raw_sha256"]: r["raw_path"] for r in rows if r["raw_sha256"] not in done}
        if todo:
            out = _map(
                {"sha256": list(todo), "raw_path": list(todo.values())},
                phash_batch,
                num_proc,
                args.batch_size,
                {"work_dir": str(work_dir)},
                "phash (datasets.map)",
            )
            with journal:
                for rec in out:
                    journal.append({"sha256": rec["sha256"], "phash": rec["phash"], "mirror": rec["mirror"]})
    else:
        settings = f"{args.resize}-{args.size}-q{args.quality}-min{args.min_side_px}"
        journal = Journal(work_dir / "cache" / "normalize.jsonl", key="key")
        done = journal.load()
        items = {
            f"{r['image_id']}:{r['raw_sha256']}:{settings}": r
            for r in rows
            if f"{r['image_id']}:{r['raw_sha256']}:{settings}" not in done
        }
        todo = items
        if items:
            columns = {
                "key": list(items),
                "image_id": [r["image_id"] for r in items.values()],
                "src": [str(work_dir / r["raw_path"]) for r in items.values()],
                "dst": [f"images/{species_dir_name(r['species'])}/{r['image_id']}.jpg" for r in items.values()],
            }
            values = dict(
                size=args.size,
                mode=args.resize,
                min_side=args.min_side_px,
                quality=args.quality,
                work_dir=str(work_dir),
            )
            out = _map(columns, normalize_batch, num_proc, args.batch_size, {"settings": values}, "normalize (map)")
            with journal:
                for rec in out:
                    journal.append(json.loads(rec["record"]))
    seconds = time.perf_counter() - t0
    summary = {
        "task": args.task,
        "images_done_now": len(todo),
        "already_in_journal": len(rows) - len(todo),
        "num_proc": num_proc,
        "seconds": round(seconds, 1),
        "images_per_second": round(len(todo) / seconds, 1) if todo and seconds else None,
        "next": "python -m data_prep " + ("dedup" if args.task == "phash" else "normalize") + " (finds it all done)",
    }
    return report(work_dir, f"map-{args.task}", summary)
