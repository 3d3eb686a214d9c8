"""publish: write the dataset in the Hugging Face Hub layout (and optionally push it).

Output folder (default ``<work-dir>/dataset``), loadable with ``datasets.load_dataset(<folder>)``
exactly as researchers load the Hub repo::

    README.md                           dataset card: YAML (configs, features, splits, licence) + text
    data/train-00000-of-0000N.parquet   image bytes embedded, ~500 MB per shard
    data/validation-*.parquet, data/test-*.parquet
    images_per_species.png              the chart of the original's figure

Features: ``image`` (Image), ``label`` (ClassLabel whose names are ALL catalog accepted species,
sorted, so label ids are the same for every build), ``species``, ``edibility`` and ``dangerous``
(from the catalog), ``source_url``, ``license``, ``origin`` (the photo's page: observation, web page),
``creator``, ``rights_holder``, ``observation_id``, ``crawler``, ``source``, ``query``, ``sha256`` (of the
published JPEG), ``image_id``, ``width``, ``height``. ``attribution.csv`` lists every image's creator,
licence and page; the card has the licence counts and an attribution table.

``--licences open`` publishes only redistributable images (CC0, public domain, CC BY, CC BY-SA, CC BY-NC,
CC BY-NC-SA); ``all`` (default) publishes every image with its licence, ``unknown`` included.

Streaming: rows are read from disk and written in row groups of 100, one shard at a time. The folder
is built next to the target and swapped in at the end, so a crash never leaves half a dataset.
``--push-to-hub ORG/NAME`` (alias ``--repo-id``) then uploads that exact folder with
``huggingface_hub`` (token: ``--token`` or ``HF_TOKEN``; never printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from .common import Manifest, add_common_arguments, atomic_path, print_summary, read_summaries, reason_kind

SPLITS = ("train", "validation", "test")
ROW_GROUP = 100
CHART = "images_per_species.png"
ATTRIBUTION = "attribution.csv"
ATTRIBUTION_COLUMNS = ("image_id", "split", "species", "creator", "rights_holder", "license", "origin", "source_url")


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("publish")
    g.add_argument("--out", type=Path, help="dataset folder (default <work-dir>/dataset)")
    g.add_argument("--max-shard-mb", type=float, default=500, help="start a new parquet shard after this many MB")
    g.add_argument("--push-to-hub", "--repo-id", dest="repo_id", help="also upload the folder to this Hub dataset repo")
    g.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN or the saved login)")
    g.add_argument("--private", action="store_true", help="create the Hub repo as private")
    g.add_argument("--pretty-name", default="Mushroom species images (cleaned)")
    g.add_argument(
        "--licences",
        choices=("all", "open"),
        default="all",
        help="open: only redistributable images (CC0, CC BY, CC BY-SA, CC BY-NC[-SA]); all: every image",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def dataset_features(names: list[str]):
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=names),
            "species": datasets.Value("string"),
            "edibility": datasets.Value("string"),
            "dangerous": datasets.Value("bool"),
            "source_url": datasets.Value("string"),
            "license": datasets.Value("string"),
            "origin": datasets.Value("string"),
            "creator": datasets.Value("string"),
            "rights_holder": datasets.Value("string"),
            "observation_id": datasets.Value("string"),
            "crawler": datasets.Value("string"),
            "source": datasets.Value("string"),
            "query": datasets.Value("string"),
            "sha256": datasets.Value("string"),
            "image_id": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
        }
    )


def _example(row: dict, work_dir: Path, label_of: dict[str, int], catalog) -> dict:
    sp = catalog.get(row["species"])
    return {
        "image": {"bytes": (work_dir / row["path"]).read_bytes(), "path": f"{row['image_id']}.jpg"},
        "label": label_of[sp.name],
        "species": sp.name,
        "edibility": sp.edibility,
        "dangerous": sp.dangerous,
        "source_url": row["source_url"],
        "license": row["license"] or "unknown",
        "origin": row["origin"],
        "creator": row.get("creator", ""),
        "rights_holder": row.get("rights_holder", ""),
        "observation_id": row.get("observation_id") or _observation(row),
        "crawler": row["crawler"],
        "source": row.get("source") or row["crawler"],
        "query": row["query"],
        "sha256": row["sha256"],
        "image_id": row["image_id"],
        "width": int(row["width"]),
        "height": int(row["height"]),
    }


def _observation(row: dict) -> str:
    from .split import observation_id

    return observation_id(row.get("origin", ""))


def write_split(
    rows: list[dict], split: str, data_dir: Path, work_dir: Path, features, label_of, catalog, max_shard_bytes: float
) -> dict:
    """Stream one split into parquet shards named like ``push_to_hub`` does; returns its sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features.arrow_schema  # carries the features (ClassLabel names) as "huggingface" metadata
    tmp_files: list[Path] = []
    writer = None
    shard_bytes = num_bytes = 0
    batch: list[dict] = []

    def flush() -> None:
        nonlocal writer, shard_bytes, num_bytes
        if not batch:
            return
        if writer is None:
            tmp_files.append(data_dir / f".{split}-{len(tmp_files):05d}.parquet.tmp")
            writer = pq.ParquetWriter(tmp_files[-1], schema)
        table = pa.Table.from_pylist(batch, schema=schema)
        writer.write_table(table)
        size = sum(len(ex["image"]["bytes"]) for ex in batch)
        shard_bytes += size
        num_bytes += table.nbytes
        batch.clear()
        if shard_bytes >= max_shard_bytes:
            writer.close()
            writer, shard_bytes = None, 0

    batch_bytes = 0
    for row in rows:
        batch.append(_example(row, work_dir, label_of, catalog))
        batch_bytes += len(batch[-1]["image"]["bytes"])
        if len(batch) >= ROW_GROUP or shard_bytes + batch_bytes >= max_shard_bytes:
            flush()
            batch_bytes = 0
    flush()
    if writer is not None:
        writer.close()
    if not tmp_files:  # an empty split still gets a (schema-only) shard so that load_dataset finds it
        tmp_files.append(data_dir / f".{split}-00000.parquet.tmp")
        pq.write_table(pa.Table.from_pylist([], schema=schema), tmp_files[-1])
    n = len(tmp_files)
    files = []
    for i, tmp in enumerate(tmp_files):
        final = data_dir / f"{split}-{i:05d}-of-{n:05d}.parquet"
        os.replace(tmp, final)
        files.append(final)
    return {
        "num_examples": len(rows),
        "num_bytes": num_bytes,
        "files": files,
        "download_size": sum(f.stat().st_size for f in files),
    }


def images_per_species_chart(counts: Counter, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = counts.most_common()
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    if items:
        ax.bar(range(len(items)), [c for _, c in items], width=1.0, color="#8c5a2b")
        step = max(1, len(items) // 40)
        ax.set_xticks(range(0, len(items), step))
        ax.set_xticklabels([items[i][0] for i in range(0, len(items), step)], rotation=90, fontsize=6)
        ax.set_xlim(-0.5, len(items) - 0.5)
    long_tail = bool(items) and items[0][1] > 50 * items[-1][1]
    if long_tail:
        ax.set_yscale("log")  # a long tail is invisible on a linear axis
    ax.set_ylabel("images (log scale)" if long_tail else "images")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def attribution_table(published: list[dict], top: int = 50) -> list[str]:
    """Markdown lines: images per creator (or rights holder) and licence, most images first."""
    per: Counter = Counter()
    page: dict = {}
    for r in published:
        who = r.get("creator") or r.get("rights_holder") or ""
        if not who:
            continue
        key = (who, r.get("rights_holder") or "", r["license"] or "unknown")
        per[key] += 1
        page.setdefault(key, r["origin"] if r["origin"].startswith("http") else r["source_url"])
    if not per:
        return ["No source named a creator for these images (see `source_url` and `origin` per image)."]
    lines = [
        f"Every image's creator, licence and page are in `{ATTRIBUTION}` (and in the columns `creator`, "
        "`rights_holder`, `license`, `origin`). Images per creator:",
        "",
        "| creator | rights holder | license | images | e.g. |",
        "|---|---|---|---:|---|",
    ]
    ranked = sorted(per.items(), key=lambda x: (-x[1], x[0]))
    for (who, holder, lic), n in ranked[:top]:
        lines.append(f"| {who} | {holder} | {lic} | {n:,} | {page[(who, holder, lic)]} |")
    if len(ranked) > top:
        lines.append(f"| ... {len(ranked) - top:,} more | | | {sum(n for _, n in ranked[top:]):,} | |")
    return lines


def dataset_card(
    features,
    split_info: dict,
    rows: list[dict],
    summaries: dict,
    species_counts: Counter,
    pretty_name: str,
    published: list[dict] | None = None,
    licences_choice: str = "all",
) -> str:
    import datasets
    import yaml

    info = datasets.DatasetInfo(
        features=features,
        splits=datasets.SplitDict(
            {
                s: datasets.SplitInfo(name=s, num_bytes=v["num_bytes"], num_examples=v["num_examples"])
                for s, v in split_info.items()
            }
        ),
        download_size=sum(v["download_size"] for v in split_info.values()),
        dataset_size=sum(v["num_bytes"] for v in split_info.values()),
    )
    n_total = sum(v["num_examples"] for v in split_info.values())
    meta = {
        "pretty_name": pretty_name,
        "license": "other",
        "license_name": "mixed-per-image",
        "license_details": "Each image keeps the licence of its source (column `license`); see the card.",
        "task_categories": ["image-classification"],
        "tags": ["fungi", "mushrooms", "biology", "species-identification"],
        "size_categories": [size_category(n_total)],
        "configs": [
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in split_info]}
        ],
        "dataset_info": {"config_name": "default", **info._to_yaml_dict()},
    }
    published = published if published is not None else [r for r in rows if r["status"] == "ok" and r["split"]]
    licences = Counter(r["license"] or "unknown" for r in published)
    left_out = sum(1 for r in rows if r["status"] == "ok" and r["split"]) - len(published)
    drops = Counter((r["drop_stage"], reason_kind(r["drop_reason"])) for r in rows if r["status"] == "dropped")
    dedup = summaries.get("dedup", {})
    split = summaries.get("split", {})
    lines = [
        f"# {pretty_name}",
        "",
        "Photographs of mushroom-forming fungi labelled with their species, for training and evaluating "
        "species classifiers. Built by the open pipeline `python -m data_prep all` (species -> crawl -> "
        "dedup -> normalize -> split -> publish) of the mushroom-id project; every image carries its "
        "source URL, licence and sha256.",
        "",
        "**Never use a model trained on this data to decide whether a mushroom is edible.** The "
        "`edibility` column (from the project's catalog, most dangerous source wins) is context for "
        "warnings, not advice.",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("<org>/<name>")   # or load_dataset("path/to/this/folder")',
        'names = ds["train"].features["label"].names   # all catalog species, sorted',
        "```",
        "",
        "## Splits",
        "",
        "| split | images | species |",
        "|---|---:|---:|",
    ]
    for s, v in split_info.items():
        n_species = len({r["species"] for r in rows if r["split"] == s})
        lines.append(f"| {s} | {v['num_examples']:,} | {n_species:,} |")
    lines += [
        "",
        f"{len(species_counts):,} species have images; the label space is all "
        f"{len(features['label'].names):,} catalog species (ids stay stable across rebuilds).",
        "",
        f"![images per species]({CHART})",
        "",
        "## How it was built",
        "",
        "1. **species**: the catalog's accepted species, each queried under all its names (synonyms are "
        "filed under the accepted name, so one species cannot appear as two classes).",
        "2. **crawl**: GBIF occurrences with still images (licence, creator and observation page per photo), "
        "or icrawler (Bing / Google / URL lists), polite rate limits, retries, minimum size; every URL tried "
        "is in the manifest with its outcome.",
        f"3. **dedup**: exact (sha256) and near duplicates (imagededup PHash, Hamming distance <= "
        f"{dedup.get('threshold', 8)}) removed within a species, keeping the largest copy; duplicates filed "
        "under two species are label conflicts and are quarantined. Found: "
        f"{dedup.get('exact_duplicates_dropped', '?')} exact and {dedup.get('near_duplicates_dropped', '?')} "
        f"near duplicates, {dedup.get('label_conflict_pairs', '?')} cross-species pairs "
        f"({dedup.get('label_conflict_images_quarantined', '?')} images quarantined).",
        "4. **normalize**: EXIF orientation applied, metadata stripped, RGB JPEG, longer side at most "
        "600 px (aspect kept); truncated, corrupt, tiny, grayscale-only and non-image files dropped.",
        f"5. **split**: {' / '.join(f'{100 * f:.0f}' for f in split.get('fractions', (0.7, 0.15, 0.15)))} per "
        f"species (seed {split.get('seed', 0)}), grouped: photos of one observation (specimen), images "
        f"within PHash distance {dedup.get('group_threshold', 10)} of each other and mirrored copies always "
        "land in the same split, so no specimen or near duplicate crosses from train to validation or test. "
        "Species with 1 distinct image are train-only, "
        f"with 2 train + one held-out image in validation or test ({split.get('species_train_only', '?')} "
        "train-only species, "
        f"{split.get('species_without_validation', '?')} without validation images).",
        "",
        "### Images dropped, by stage and reason",
        "",
        "| stage | reason | images |",
        "|---|---|---:|",
        *[f"| {st} | {re_} | {n:,} |" for (st, re_), n in sorted(drops.items())],
        "",
        "## Licences",
        "",
        "Images come from several sources with different terms; the `license` and `source_url` columns "
        "say what each source stated. `unknown` means the source stated nothing: such images may not be "
        "redistributable; use them for research only and check the source before any other use.",
        "",
        "| license | images |",
        "|---|---:|",
        *[f"| {lic} | {n:,} |" for lic, n in licences.most_common()],
        "",
        *(
            [
                f"Published with `--licences open`: only redistributable licences; {left_out:,} images under "
                "other or unknown terms were left out.",
                "",
            ]
            if licences_choice == "open"
            else []
        ),
        "### Attribution",
        "",
        *attribution_table(published),
        "",
        "## Limitations",
        "",
        "- Labels of web-scraped images come from search queries and are noisy; only duplicates across "
        "species were detected automatically.",
        "- The species distribution is long-tailed (see the chart); rare species have few or no "
        "validation/test images, so their per-species metrics are unreliable.",
        "- Photos over-represent Europe and North America and well-photographed, fresh fruiting bodies.",
        "- Edibility comes from the project's catalog (several sources, most dangerous wins); it is not "
        "a guarantee of anything.",
        "",
    ]
    return (
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "---\n\n" + "\n".join(lines)
    )


def _remove_dead_staging(out: Path) -> None:
    """Remove the half-built ``.<name>.staging-<pid>`` / ``.<name>.old-<pid>`` folders of killed runs."""
    for folder in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = folder.name[len(out.name) + 2 :].rpartition("-")
        if kind not in ("staging", "old") or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            if int(pid) != os.getpid():
                continue  # another publish is running right now
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def build_dataset(
    work_dir: Path, out: Path, max_shard_mb: float = 500, pretty_name: str = "", licences: str = "all"
) -> dict:
    from mushroom_id.core.catalog import default_catalog

    from .gbif import is_open_licence

    catalog = default_catalog()
    rows = Manifest(work_dir).rows()
    published = [r for r in rows if r["status"] == "ok" and r["split"]]
    if not published:
        raise SystemExit("no images with a split in the manifest: run `python -m data_prep split` first")
    n_all = len(published)
    if licences == "open":
        published = [r for r in published if is_open_licence(r["license"])]
        if not published:
            raise SystemExit(f"--licences open: none of the {n_all} images has an open licence")
    names = sorted(catalog.names)
    label_of = {n: i for i, n in enumerate(names)}
    features = dataset_features(names)
    out = out.resolve()
    _remove_dead_staging(out)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    split_info = {}
    from tqdm import tqdm

    for split in SPLITS:
        split_rows = sorted((r for r in published if r["split"] == split), key=lambda r: (r["species"], r["image_id"]))
        if not split_rows:
            continue
        with tqdm(total=1, desc=f"publish {split}", disable=None) as bar:
            split_info[split] = write_split(
                split_rows, split, staging / "data", work_dir, features, label_of, catalog, max_shard_mb * 1e6
            )
            bar.update()
    species_counts = Counter(r["species"] for r in published)
    images_per_species_chart(
        species_counts,
        staging / CHART,
        f"Images per species ({len(species_counts)} species, {len(published):,} images)",
    )
    card = dataset_card(
        features,
        split_info,
        rows,
        read_summaries(work_dir),
        species_counts,
        pretty_name or "Mushroom species images (cleaned)",
        published,
        licences,
    )
    (staging / "README.md").write_text(card, encoding="utf-8")
    from .common import write_csv

    write_csv(
        staging / ATTRIBUTION,
        sorted(published, key=lambda r: (r["split"], r["species"], r["image_id"])),
        ATTRIBUTION_COLUMNS,
    )
    # swap the finished folder in
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    return {s: v["num_examples"] for s, v in split_info.items()} | {
        "species": len(species_counts),
        "labels": len(names),
        "bytes_on_disk": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
        "left_out_by_licence": n_all - len(published),
    }


def push_folder(folder: Path, repo_id: str, token: str | None = None, private: bool = False, api=None) -> str:
    """Upload the dataset folder as is to a Hub dataset repo; returns the repo URL. ``api``: an HfApi."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    repo = api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="Upload dataset built by `python -m data_prep publish`",
    )
    return str(getattr(repo, "url", repo))


def run(args: argparse.Namespace) -> int:
    out = args.out or args.work_dir / "dataset"
    t0 = time.perf_counter()
    counts = build_dataset(args.work_dir, out, args.max_shard_mb, args.pretty_name, args.licences)
    lines = [(f"{s}", counts.get(s, 0)) for s in SPLITS] + [
        ("species with images / labels", f"{counts['species']} / {counts['labels']}"),
        ("size on disk", f"{counts['bytes_on_disk'] / 1e6:.1f} MB"),
        *([("left out (licence not open)", counts["left_out_by_licence"])] if args.licences == "open" else []),
        ("folder", out),
        ("time", f"{time.perf_counter() - t0:.1f} s"),
    ]
    if args.repo_id:
        try:
            url = push_folder(out, args.repo_id, args.token, args.private)
        except Exception as e:  # never show the token, even where a server echoes it back
            message = f"{type(e).__name__}: {e}"
            token = args.token or os.environ.get("HF_TOKEN")
            if token:
                message = message.replace(token, "<token>")
            raise SystemExit(f"push to {args.repo_id} failed: {message}") from None
        lines.append(("pushed to", url))
    print_summary("publish", lines)
    return 0
