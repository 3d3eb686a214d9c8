"""``--engine ray``: the heavy per-image work and the near-duplicate search as Ray Data pipelines on Parquet.

    pip install -r requirements-ray.txt                      # the optional extra (or: pip install .[ray])
    ray start --head --num-cpus 16                           # once per cluster (then `ray start --address ...`
                                                             # on each other machine)
    python -m data_prep all --from photos/ --engine ray --address auto

Without ``--address`` a local Ray is started with ``--workers`` CPUs (and shut down at exit); ``auto`` joins the
cluster of ``ray start``; ``ray://host:10001`` goes through Ray Client. The default ``--engine local`` stays the
single-machine path (a forked process pool); both engines write the same manifest and the same dataset.

What runs on Ray, each as ``read_parquet -> map_batches -> write_parquet`` under ``<work-dir>/ray/<task>/``:

* ``phash`` (dedup): PHash and mirror PHash of each raw file, keyed by its sha256;
* ``normalize``: decode, EXIF, resize, JPEG of each raw file (the worker writes the JPEG into the work folder);
* ``embed`` (dedup ``--cnn``): backbone embeddings, one model per actor (``--workers`` actors);
* ``pairs`` (dedup): the exact PHash pair search, one block of query hashes per task against all hashes
  (``near_duplicates.hash_pairs`` on each block: the same pairs as the single-machine search).

The driver appends each result to the stage's own journal (``cache/phash.jsonl``, ``cache/normalize.jsonl``,
the embeddings cache), so a killed run resumes under either engine, and the stage's whole-manifest part
(clusters, drop rules, split) runs once, on the driver. On a cluster the work folder (raw files, ``images/``,
``ray/``) must sit on storage every worker reads and writes: a shared file system mounted at the same path.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ENGINES = ("local", "ray")
BATCH = 32  # images per map_batches batch (the embeddings use the local path's batch too)


def add_engine_arguments(parser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local (default): this machine's process pool; ray: Ray Data pipelines on Parquet (optional extra)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="with --engine ray: auto (the cluster of `ray start --head`), ray://host:10001, or none: a local Ray "
        "with --workers CPUs",
    )


def uses_ray(args) -> bool:
    return getattr(args, "engine", "local") == "ray"


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once per process (a Ray the caller already started is used as it is)."""
    try:
        import ray
    except ImportError:
        raise SystemExit(
            "--engine ray needs Ray Data: pip install -r requirements-ray.txt (or: pip install '.[ray]')"
        ) from None
    if ray.is_initialized():
        return
    repo = str(Path(__file__).resolve().parents[1])
    if address in (None, "", "local"):
        # a local cluster: its workers import data_prep / mushroom_id from this checkout
        path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
        runtime_env = {"env_vars": {"PYTHONPATH": path}}
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
    else:  # a cluster: ship the two packages to its workers
        import data_prep
        import mushroom_id

        ray.init(address=address, runtime_env={"py_modules": [data_prep, mushroom_id]}, log_to_driver=False)
    resources = ray.cluster_resources()
    print(
        f"Ray {ray.__version__}: {int(resources.get('CPU', 0))} CPUs on {len(ray.nodes())} node(s)"
        + (f" at {address}" if address else " (local)"),
        file=sys.stderr,
        flush=True,
    )


def _quiet_context():
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    return ctx


def run_table(
    work_dir: Path,
    task: str,
    columns: dict[str, list],
    fn: Callable,
    fn_kwargs: dict | None = None,
    batch_size: int = BATCH,
    actors: int | None = None,
    constructor_kwargs: dict | None = None,
) -> Iterator[dict]:
    """Write ``columns`` to ``<work>/ray/<task>/input.parquet``, run ``fn`` over it with Ray Data
    (``map_batches``, pyarrow batches; ``fn`` a class -> ``actors`` actors), write the results as Parquet
    under ``<work>/ray/<task>/output/`` and yield them row by row (streamed, one file at a time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    import ray.data

    _quiet_context()
    folder = Path(work_dir).resolve() / "ray" / task
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "output").mkdir(parents=True)
    table = pa.table(columns)
    # one input file read as a few blocks per CPU: enough for the workers to share it, few enough that Ray's
    # per-task cost (measured: it dominated with one block per batch on 2 CPUs) stays small
    pq.write_table(table, folder / "input.parquet", row_group_size=batch_size)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    blocks = max(1, min(-(-len(table) // batch_size), 2 * cpus))
    ds = ray.data.read_parquet(str(folder / "input.parquet"), override_num_blocks=blocks)
    options: dict = {"batch_size": batch_size, "batch_format": "pyarrow"}
    if isinstance(fn, type):
        # the actors hold a CPU each for their whole life: leave one for the read tasks that feed them, or a
        # small cluster (2 CPUs, 2 actors) waits forever
        concurrency = max(1, min(actors or 1, cpus - 1))
        options |= {"concurrency": concurrency, "num_cpus": 1, "fn_constructor_kwargs": constructor_kwargs or {}}
    else:
        options |= {"fn_kwargs": fn_kwargs or {}}
    ds.map_batches(fn, **options).write_parquet(str(folder / "output"))
    for file in sorted((folder / "output").glob("*.parquet")):
        yield from pq.read_table(file).to_pylist()


# --------------------------------------------------------------------------------------------- the tasks


def phash_table(batch, work_dir: str):
    """pyarrow batch ``sha256, raw_path`` -> ``sha256, phash, mirror`` (dedup's per-image work)."""
    import pyarrow as pa

    from .scale_out import phash_batch

    out = phash_batch(batch.to_pydict(), work_dir)
    return pa.table({"sha256": out["sha256"], "phash": out["phash"], "mirror": out["mirror"]})


def normalize_table(batch, settings: dict):
    """pyarrow batch ``key, image_id, src, dst`` -> ``key, record`` (normalize's journal record, JSON)."""
    import pyarrow as pa

    from .scale_out import normalize_batch

    return pa.table(normalize_batch(batch.to_pydict(), settings))


class Embedder:
    """One backbone per actor: pyarrow batch ``sha256, path`` -> ``sha256, vector`` (dedup --cnn)."""

    def __init__(self):
        import torch

        torch.set_num_threads(1)  # one core per actor: the actors are the parallelism

    def __call__(self, batch):
        import pyarrow as pa

        from .dedup import embeddings

        rows = batch.to_pydict()
        vectors = embeddings(rows["path"], batch=BATCH)
        return pa.table({"sha256": rows["sha256"], "vector": [v.tolist() for v in vectors]})


def pairs_table(batch, codes_file: str, threshold: int, mirror: bool):
    """pyarrow batch of query blocks ``lo, hi`` -> every pair (i, j, distance) of hashes i in [lo, hi) with j
    (j > i for a self search; j != i against the plain hashes for mirror hashes), exact."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .near_duplicates import hash_pairs

    table = pq.read_table(codes_file)
    codes = table.column("code").to_pylist()
    queries = table.column("query").to_pylist()
    out_i, out_j, out_d = [], [], []
    for lo, hi in zip(batch.column("lo").to_pylist(), batch.column("hi").to_pylist(), strict=True):
        for i, j, d in hash_pairs(queries[lo:hi], threshold, against=codes, base=lo, upper=not mirror):
            out_i.append(lo + i)
            out_j.append(j)
            out_d.append(d)
    return pa.table({"i": pa.array(out_i, pa.int64()), "j": pa.array(out_j, pa.int64()), "d": out_d})


# --------------------------------------------------------------------------------------------- the stages' calls


def phashes(work_dir: Path, todo: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(sha256, PHash, mirror PHash) of each ``sha256 -> file`` of ``todo``."""
    columns = {"sha256": list(todo), "raw_path": [str(p) for p in todo.values()]}
    for rec in run_table(work_dir, "phash", columns, phash_table, {"work_dir": str(work_dir)}):
        yield rec["sha256"], rec["phash"], rec["mirror"]


def normalized(work_dir: Path, todo: list[tuple[str, str, str, str]], settings: dict) -> Iterator[dict]:
    """normalize's journal record of each (key, image_id, raw file, output file)."""
    columns = {name: [t[k] for t in todo] for k, name in enumerate(("key", "image_id", "src", "dst"))}
    for rec in run_table(work_dir, "normalize", columns, normalize_table, {"settings": settings}):
        yield json.loads(rec["record"])


def embedded(work_dir: Path, todo: dict[str, str], actors: int) -> Iterator[tuple[str, list[float]]]:
    """(sha256, embedding) of each ``sha256 -> file`` of ``todo``, ``actors`` backbones at once."""
    columns = {"sha256": list(todo), "path": list(todo.values())}
    for rec in run_table(work_dir, "embed", columns, Embedder, actors=actors):
        yield rec["sha256"], rec["vector"]


def pair_search(work_dir: Path, blocks: int = 0) -> Callable:
    """A ``hash_pairs(codes, threshold, against=None)`` that runs on Ray: the hashes go to one Parquet file
    every task reads, each task searches one block of them against all; the pairs come back sorted."""

    def search(codes, threshold, against=None):
        import pyarrow as pa
        import pyarrow.parquet as pq
        import ray

        codes = list(codes)
        if not codes:
            return []
        mirror = against is not None
        folder = Path(work_dir).resolve() / "ray" / "pairs-codes"
        folder.mkdir(parents=True, exist_ok=True)
        codes_file = folder / ("mirror.parquet" if mirror else "plain.parquet")
        plain = list(against) if mirror else codes
        queries = codes
        pq.write_table(pa.table({"code": plain, "query": queries}), codes_file)
        n_blocks = blocks or max(1, int(ray.cluster_resources().get("CPU", 1)) * 4)
        size = -(-len(queries) // n_blocks)
        spans = [(lo, min(lo + size, len(queries))) for lo in range(0, len(queries), size)]
        columns = {"lo": [a for a, _ in spans], "hi": [b for _, b in spans]}
        kwargs = {"codes_file": str(codes_file), "threshold": int(threshold), "mirror": mirror}
        task = "pairs-mirror" if mirror else "pairs"
        found = run_table(work_dir, task, columns, pairs_table, kwargs, batch_size=1)
        return sorted((r["i"], r["j"], r["d"]) for r in found)

    return search
