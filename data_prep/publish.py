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

Licences: each image's licence is an SPDX-like id (:mod:`data_prep.licences`: ``CC-BY-SA-4.0``, ``CC0-1.0``,
``PD``, ``unknown``) with the source's text in ``license_raw``. ``--licences open`` (the default) publishes only
open images (CC0, public domain, CC BY, CC BY-SA) and says how many it left out and why; ``--licences
restricted`` adds the non-commercial and no-derivatives Creative Commons licences, ``--licences all`` every
image, ``unknown`` included. Both are explicit choices and only ever go into a *private* repo: before any
upload the repo's real visibility is read back from the Hub (``repo_info``; ``create_repo`` does not change an
existing repo), and a public repo, or one whose visibility the Hub does not state, is refused for any
image whose licence is not open (:func:`push_folder` checks the folder's own ``license`` column).

Streaming: rows are read from disk and written in row groups of 100, one shard at a time. The folder
is built next to the target and swapped in at the end, so a crash never leaves half a dataset.
``--push-to-hub ORG/NAME`` (alias ``--repo-id``) then uploads that exact folder with
``huggingface_hub`` (token: ``--token``, ``HF_TOKEN`` or the saved login; never printed). The token is
checked first (``whoami``), before anything is built: a missing, rejected or read-only token, or an
unreachable Hub, stops the run at once with what to do. ``HF_ENDPOINT`` points it at another Hub
(the tests use a local stand-in).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

from .common import (
    Manifest,
    add_common_arguments,
    atomic_path,
    print_summary,
    read_summaries,
    reason_kind,
    write_summary,
)
from .licences import is_open_licence, normalise_licence, publishable, why_not_open

SPLITS = ("train", "validation", "test")
ROW_GROUP = 100
CHART = "images_per_species.png"
ATTRIBUTION = "attribution.csv"
ATTRIBUTION_COLUMNS = (
    "image_id",
    "split",
    "species",
    "creator",
    "rights_holder",
    "license",
    "license_raw",
    "link",
    "source_url",
)
NO_CREATOR = "not named by the source (see link)"
CARD_ATTRIBUTION_ROWS = 1000  # beyond this the card points to attribution.csv
LICENCE_CHOICES = ("open", "restricted", "all")


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("publish")
    g.add_argument("--out", type=Path, help="dataset folder (default <work-dir>/dataset)")
    g.add_argument("--max-shard-mb", type=float, default=500, help="start a new parquet shard after this many MB")
    g.add_argument("--push-to-hub", "--repo-id", dest="repo_id", help="also upload the folder to this Hub dataset repo")
    g.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN or the saved login)")
    g.add_argument(
        "--private", action="store_true", help="create the Hub repo as private (forced by --licences restricted/all)"
    )
    g.add_argument("--pretty-name", default="Mushroom species images (cleaned)")
    g.add_argument(
        "--leave-out-untrainable",
        action="store_true",
        help="publish without the species that have validation/test photos but no training photo (after the "
        "licence filter), instead of refusing the build; the run and the card say which",
    )
    g.add_argument(
        "--licences",
        choices=LICENCE_CHOICES,
        default="open",
        help="open (default): only open licences (CC0, PD, CC BY, CC BY-SA); restricted: also CC BY-NC / -ND "
        "(private repo only); all: every image, unknown licences included (private repo only)",
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
            "license_raw": datasets.Value("string"),
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
        "license": normalise_licence(row["license"]),
        "license_raw": row.get("license_raw") or row["license"],
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


def link_of(row: dict) -> str:
    """The page to credit an image by: its home page (observation, Commons file page), else where it came from."""
    return row["origin"] if row["origin"].startswith("http") else row["source_url"]


def attribution_rows(published: list[dict]) -> list[dict]:
    """One row per published image: who made it, under which licence, where its page is."""
    return [
        {
            "image_id": r["image_id"],
            "split": r["split"],
            "species": r["species"],
            "creator": r.get("creator") or "",
            "rights_holder": r.get("rights_holder") or "",
            "license": normalise_licence(r["license"]),
            "license_raw": r.get("license_raw") or r["license"],
            "link": link_of(r),
            "source_url": r["source_url"],
        }
        for r in sorted(published, key=lambda r: (r["split"], r["species"], r["image_id"]))
    ]


def _cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def attribution_table(credits: list[dict], top: int = CARD_ATTRIBUTION_ROWS) -> list[str]:
    """Markdown lines: creator, licence and link of every image (the first ``top``; all are in attribution.csv)."""
    named = sum(1 for c in credits if c["creator"] or c["rights_holder"])
    lines = [
        f"Every image's creator, licence and page are in `{ATTRIBUTION}` (and in the columns `creator`, "
        f"`rights_holder`, `license`, `license_raw`, `origin`). {named:,} of {len(credits):,} images name their "
        "creator; for the others the source named none and the linked page is the credit (CC BY 4.0 section "
        "3(a)(2) allows attribution by a link to a page that names the creator; for older CC versions, name "
        "the creator from that page when you reuse an image).",
        "",
        "| image | creator | license | link |",
        "|---|---|---|---|",
    ]
    for c in credits[:top]:
        who = c["creator"] or c["rights_holder"] or NO_CREATOR
        lines.append(f"| {c['image_id']} | {_cell(who)} | {c['license']} | {_cell(c['link'])} |")
    if len(credits) > top:
        lines.append(f"| ... {len(credits) - top:,} more in `{ATTRIBUTION}` | | | |")
    return lines


ORIGINAL_PROJECT = "Mushroom Recognition Classifier using CNNs (Keras; 933 species; the project this one rebuilds)"
# Who to cite for the photos of each source (the manifest's ``source``; hosts and collections).
SOURCE_CITATIONS = {
    "gbif": "GBIF.org: GBIF Occurrence Download / API, https://www.gbif.org (cite the occurrence datasets used)",
    "inat": "iNaturalist contributors, iNaturalist research-grade observations (via GBIF), https://www.inaturalist.org",
    "inatse": "iNaturalist contributors, https://www.inaturalist.org",
    "commons": "Wikimedia Commons contributors, https://commons.wikimedia.org",
    "wiki": "Wikipedia / Wikimedia Commons contributors, https://commons.wikimedia.org",
    "mo": "Mushroom Observer contributors, https://mushroomobserver.org",
}


def same_source_share(rows: list[dict], split: str = "test") -> tuple[int, int]:
    """(photos of ``split`` whose species trained on a photo of the same source, photos of ``split``)."""
    from collections import defaultdict

    train: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["split"] == "train":
            train[r["species"]].add(r.get("source") or r["crawler"])
    held = [r for r in rows if r["split"] == split]
    return sum((r.get("source") or r["crawler"]) in train[r["species"]] for r in held), len(held)


def build_steps(summaries: dict, published: list[dict]) -> list[str]:
    """The card's "How it was built", from the summaries the stages saved (what the build really did)."""
    from .split import EVALUATION_HELD_OUT_CAP

    steps = []
    if "ingest" in summaries:
        ing = summaries["ingest"]
        steps.append(
            f"**ingest**: the local folder `{Path(ing.get('folder', '?')).name}` ({ing.get('photos', '?'):,} photos, "
            f"{ing.get('kept', '?'):,} of catalog species taken in; names resolved through the catalog, synonyms "
            "filed under the accepted name). No crawl: each photo keeps the source, page and licence its folder "
            "manifest gave."
        )
    if "crawl" in summaries:
        cr = summaries["crawl"]
        steps.append(
            "**species**: the catalog's accepted species, each queried under all its names."
            if "species" in summaries
            else ""
        )
        steps.append(
            f"**crawl** (`--source {cr.get('source', '?')}`): {cr.get('urls_tried', '?'):,} URLs tried, "
            f"{cr.get('images_kept', '?'):,} images kept; polite rate limits, retries, minimum size; every URL tried "
            "is "
            "in the manifest with its outcome."
        )
    dedup = summaries.get("dedup", {})
    if dedup:
        joint = (
            f" Crops (backbone embeddings of one species, cosine >= {dedup.get('cnn_threshold', 0.9)}: "
            f"{dedup.get('embedding_pairs_grouped', 0):,} pairs) and pairs of one species within PHash "
            f"{dedup['joint_phash']} whose embeddings have cosine >= {dedup['joint_cosine']} "
            f"({dedup.get('joint_pairs_grouped', 0):,} pairs) join one split group too."
            if dedup.get("cnn") and "joint_phash" in dedup
            else ""
        )
        steps.append(
            f"**dedup**: exact (sha256) and near duplicates (PHash, Hamming distance <= {dedup.get('threshold', '?')}) "
            "removed within a species, keeping the largest copy; duplicates filed under two species are quarantined. "
            f"Found {dedup.get('exact_duplicates_dropped', 0):,} exact and {dedup.get('near_duplicates_dropped', 0):,} "
            f"near duplicates, {dedup.get('label_conflict_pairs', 0):,} cross-species pairs. Images within PHash "
            f"{dedup.get('group_threshold', '?')} and mirrored copies "
            f"({dedup.get('mirrored_pairs_grouped', 0):,} pairs) "
            f"share a split group.{joint}"
        )
    if "normalize" in summaries:
        steps.append(
            "**normalize**: EXIF orientation applied, metadata stripped, RGB JPEG, longer side at most 600 px; "
            "truncated, corrupt, tiny and non-image files dropped."
        )
    split = summaries.get("split", {})
    if split:
        fractions = " / ".join(f"{100 * f:.0f}" for f in split.get("fractions", ()))
        if split.get("strategy") == "cross-source":
            held = split.get("held_out_cross_source", {})
            how = (
                f"cross-source: for the {split.get('species_cross_source', 0):,} species with photos from two or more "
                "sources, whole sources are held out (smallest first, about "
                f"{100 - 100 * split.get('fractions', [0.7])[0]:.0f}% of the species' groups) and their photos are "
                f"the species' validation and test photos ({held.get('validation', 0):,} + {held.get('test', 0):,}); "
                f"species with one source get the grouped {fractions} split"
            )
        else:
            how = f"grouped, {fractions} per species"
        n_same, n_test = same_source_share(published)
        steps.append(
            f"**split** ({how}; seed {split.get('seed', 0)}): photos of one observation, near duplicates and "
            "mirrored copies always land in the same split. Species with one distinct image are train-only "
            f"({split.get('species_train_only', 0):,}), {split.get('species_without_validation', 0):,} species "
            f"have no validation image. {n_same:,} of {n_test:,} test photos come from a source their species "
            "also trained on (single-source species, or a source shared with training)."
        )
    steps.append(
        f"**evaluation cap**: the project's own evaluation reads at most {EVALUATION_HELD_OUT_CAP} photos per "
        "species from validation and test (chosen by content hash), so no species outweighs the others; the "
        "splits here are complete, apply the same cap to compare with its numbers."
    )
    return [f"{i}. {step}" for i, step in enumerate((s for s in steps if s), 1)]


def citation_lines(pretty_name: str, repo_id: str | None, published: list[dict]) -> list[str]:
    """BibTeX for the dataset, the original project, and each source the published photos come from."""
    import datetime

    year = datetime.date.today().year
    url = f"https://huggingface.co/datasets/{repo_id}" if repo_id else "<the dataset's URL>"
    key = re.sub(r"[^a-z0-9]+", "_", (repo_id or pretty_name).lower()).strip("_")
    sources = Counter(r.get("source") or r["crawler"] for r in published)
    lines = [
        "If you use this dataset, cite it, the project it rebuilds, and the sources of the photos you use:",
        "",
        "```bibtex",
        f"@misc{{{key}_{year},",
        f"  title        = {{{{{pretty_name}}}}},",
        f"  year         = {{{year}}},",
        f"  howpublished = {{\\url{{{url}}}}},",
        "  note         = {Built with the mushroom-id data pipeline (python -m data_prep); per-image licences and "
        "credits in attribution.csv}",
        "}",
        "```",
        "",
        f"- Original project: {ORIGINAL_PROJECT}.",
        "- Photo sources (images in this build):",
    ]
    for source, n in sources.most_common():
        lines.append(
            f"  - `{source}` ({n:,}): {SOURCE_CITATIONS.get(source, 'see each image `origin` / `source_url`')}"
        )
    return lines


def dataset_card(
    features,
    split_info: dict,
    rows: list[dict],
    summaries: dict,
    species_counts: Counter,
    pretty_name: str,
    published: list[dict] | None = None,
    licences_choice: str = "open",
    repo_id: str | None = None,
) -> str:
    """The README.md of the dataset: YAML metadata (configs, features, splits) and text written from what
    this build did (its stage summaries, the published rows), never from defaults."""
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
    published = published if published is not None else [r for r in rows if r["status"] == "ok" and r["split"]]
    licences = Counter(normalise_licence(r["license"]) for r in published)
    meta = {
        "pretty_name": pretty_name,
        "license": "other",
        "license_name": "mixed-per-image",
        "license_details": "Each image keeps its source's licence (columns `license`, `license_raw`); see the card.",
        "task_categories": ["image-classification"],
        "tags": ["fungi", "mushrooms", "biology", "species-identification"],
        "size_categories": [size_category(n_total)],
        "configs": [
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in split_info]}
        ],
        "dataset_info": {"config_name": "default", **info._to_yaml_dict()},
    }
    candidates = [r for r in rows if r["status"] == "ok" and r["split"]]
    published_ids = {r["image_id"] for r in published}
    left_out = Counter(
        why_not_open(r["license"]) or "species without a training photo (--leave-out-untrainable)"
        for r in candidates
        if r["image_id"] not in published_ids
    )
    drops = Counter((r["drop_stage"], reason_kind(r["drop_reason"])) for r in rows if r["status"] == "dropped")
    lines = [
        f"# {pretty_name}",
        "",
        "Photographs of mushroom-forming fungi labelled with their species, for training and evaluating "
        "species classifiers. Built by the open pipeline `python -m data_prep` of the mushroom-id project; "
        "every image carries its source URL, licence, creator (where the source names one) and sha256.",
        "",
        "**Never use a model trained on this data to decide whether a mushroom is edible.** The "
        "`edibility` column (from the project's catalog, most dangerous source wins) is context for "
        "warnings, not advice.",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{repo_id or "<org>/<name>"}")   # or load_dataset("path/to/this/folder")',
        'names = ds["train"].features["label"].names   # all catalog species, sorted',
        "```",
        "",
        "## Splits",
        "",
        "| split | images | species |",
        "|---|---:|---:|",
    ]
    for s, v in split_info.items():
        n_species = len({r["species"] for r in published if r["split"] == s})
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
        *build_steps(summaries, published),
        "",
        "### Images dropped, by stage and reason",
        "",
        "| stage | reason | images |",
        "|---|---|---:|",
        *[f"| {st} | {re_} | {n:,} |" for (st, re_), n in sorted(drops.items())],
        "",
        "## Licences",
        "",
        "Images come from several sources with different terms. `license` is an SPDX-like id (`CC-BY-SA-4.0`, "
        "`CC0-1.0`, `PD`, ...) normalised from what the source stated (`license_raw`); `unknown` means the source "
        "stated nothing checkable.",
        "",
        "| license | images |",
        "|---|---:|",
        *[f"| {lic} | {n:,} |" for lic, n in licences.most_common()],
        "",
        *(
            [
                f"Published with `--licences open`: only open licences (CC0, PD, CC BY, CC BY-SA). "
                f"Left out: {sum(left_out.values()):,} images"
                + (": " + "; ".join(f"{why}: {n:,}" for why, n in left_out.most_common()) if left_out else "")
                + ".",
                "",
            ]
            if licences_choice == "open"
            else [
                f"Published with `--licences {licences_choice}`: "
                + (
                    "images under non-commercial or no-derivatives licences are included"
                    if licences_choice == "restricted"
                    else "images of unknown or unverified licence are included"
                )
                + "; they may not be redistributable, so this repository must stay private (the publisher "
                "refuses to push it into a public repo). Use them for research only and check each source "
                "before any other use."
                + (
                    f" Left out: {sum(left_out.values()):,} images: "
                    + "; ".join(f"{why}: {n:,}" for why, n in left_out.most_common())
                    + "."
                    if left_out
                    else ""
                ),
                "",
            ]
        ),
        "### Attribution",
        "",
        *attribution_table(attribution_rows(published)),
        "",
        "## Citation",
        "",
        *citation_lines(pretty_name, repo_id, published),
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
    work_dir: Path,
    out: Path,
    max_shard_mb: float = 500,
    pretty_name: str = "",
    licences: str = "open",
    repo_id: str | None = None,
    leave_out_untrainable: bool = False,
) -> dict:
    from mushroom_id.core.catalog import default_catalog

    catalog = default_catalog()
    rows = Manifest(work_dir).rows()
    published = [r for r in rows if r["status"] == "ok" and r["split"]]
    if not published:
        raise SystemExit("no images with a split in the manifest: run `python -m data_prep split` first")
    n_all = len(published)
    left_out = Counter(why_not_open(r["license"]) for r in published if not publishable(r["license"], licences))
    published = [r for r in published if publishable(r["license"], licences)]
    if not published:
        reasons = "; ".join(f"{why}: {n}" for why, n in left_out.most_common())
        raise SystemExit(
            f"--licences {licences}: none of the {n_all} images has a licence it takes ({reasons}). "
            "Crawl licensed photos (crawl --source gbif), or publish privately with --licences all."
        )
    n_after_licence = len(published)
    if leave_out_untrainable:
        _, missing = untrainable(published)
        if missing:
            gone = [r for r in published if r["species"] in missing]
            left_out[f"species without a training photo ({len(missing)}: {', '.join(missing)})"] += len(gone)
            published = [r for r in published if r["species"] not in missing]
    check_trainable(published, f"--licences {licences} left out {n_all - len(published)} images" if left_out else "")
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
        repo_id,
    )
    (staging / "README.md").write_text(card, encoding="utf-8")
    from .common import write_csv

    write_csv(staging / ATTRIBUTION, attribution_rows(published), ATTRIBUTION_COLUMNS)
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
        "left_out_by_licence": n_all - n_after_licence,
        "left_out_reasons": dict(left_out.most_common()),
        "per_species": per_species_counts(published),
    }


def per_species_counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    """species -> {train, validation, test} image counts (every split named, zeros included)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if r.get("split") in SPLITS:
            out.setdefault(r["species"], dict.fromkeys(SPLITS, 0))[r["split"]] += 1
    return dict(sorted(out.items()))


def untrainable(rows: list[dict]) -> tuple[int, list[str]]:
    """(training images, species with validation/test images but no training image) of a split build."""
    counts = per_species_counts(rows)
    return sum(c["train"] for c in counts.values()), [s for s, c in counts.items() if not c["train"]]


def check_trainable(rows: list[dict], context: str = "") -> None:
    """Stop a build that has no training split, or a species that is evaluated but never trained on.

    Such a dataset loads, but ``train.py`` (and the card's own ``ds["train"]``) fail on it, and a species
    without a training photo can only ever be predicted wrong."""
    n_train, missing = untrainable(rows)
    if n_train and not missing:
        return
    counts = per_species_counts(rows)
    table = "\n".join(
        f"  {sp:<40} train {c['train']:>4}  validation {c['validation']:>4}  test {c['test']:>4}"
        for sp, c in counts.items()
        if not c["train"] or not n_train
    )
    what = (
        "the train split is empty"
        if not n_train
        else f"{len(missing)} species have validation/test photos but no training photo"
    )
    raise SystemExit(
        f"this build cannot be trained on: {what}"
        + (f" ({context})" if context else "")
        + ":\n"
        + table
        + "\nWhy: the split keeps the photos of each species' largest source for training and holds other "
        "sources out for evaluation; when the licence filter keeps only held-out photos (or too few photos per "
        "species and source came in), nothing is left to train on. What to do: add photos of these species "
        "under an open licence (a second source, e.g. `crawl --source gbif`), or publish every photo privately "
        "(`--licences all`), or leave the species out (`publish --leave-out-untrainable`, or `split "
        "--min-per-species 3`); then rerun. Nothing was published."
    )


def hub_api(token: str | None = None):
    """An HfApi on ``HF_ENDPOINT`` (read now, not at import: tests and mirrors set it late)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def resolve_token(token: str | None) -> str | None:
    """``--token``, else ``HF_TOKEN``, else the login saved by ``hf auth login``."""
    if token:
        return token
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def check_hub_token(token: str | None, repo_id: str) -> str:
    """Ask the Hub who the token belongs to, before anything is built; returns the user name.

    Stops with what to do when there is no token, the Hub rejects it, it can only read, or the Hub
    cannot be reached (the message never shows the token)."""
    how = "set HF_TOKEN=hf_... (or pass --token hf_...) with a write token from https://huggingface.co/settings/tokens"
    if not token:
        raise SystemExit(f"--push-to-hub {repo_id} needs a Hub token: {how}. Nothing was built.")
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise SystemExit(f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set; unset it to push. Nothing was built.")
    try:
        who = hub_api(token).whoami(token=token)
    except Exception as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
        if status in (401, 403):
            raise SystemExit(
                f"--push-to-hub {repo_id}: the Hub at {endpoint} rejected the token (HTTP {status}): {how}. "
                "Nothing was built."
            ) from None
        message = f"{type(e).__name__}: {e}".replace(token, "<token>")
        raise SystemExit(
            f"--push-to-hub {repo_id}: cannot check the token at {endpoint} ({message}). Check the network "
            "(or HF_ENDPOINT) and retry. Nothing was built."
        ) from None
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise SystemExit(f"--push-to-hub {repo_id}: the token of {who.get('name')} can only read: {how}.")
    return str(who.get("name") or "")


def repo_visibility(api, repo_id: str) -> str:
    """``private``, ``public`` or ``absent``: what the Hub says of the dataset repo now (``repo_info``). A repo
    whose visibility the Hub does not state counts as public: it may be, or become, public."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        info = api.repo_info(repo_id=repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        return "absent"
    except HfHubHTTPError as e:
        if getattr(e.response, "status_code", None) == 404:
            return "absent"
        raise
    return "private" if getattr(info, "private", None) is True else "public"


def folder_licences(folder: Path) -> Counter:
    """The ``license`` of every image in the dataset folder's parquet shards (what would be uploaded)."""
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    for shard in sorted((Path(folder) / "data").glob("*.parquet")):
        counts.update(pq.read_table(shard, columns=["license"]).column("license").to_pylist())
    return counts


def not_open(folder: Path) -> Counter:
    """licence -> images of the folder whose licence is not open (NC, ND, unknown...)."""
    return Counter({lic: n for lic, n in folder_licences(folder).items() if not is_open_licence(lic)})


def refuse_public(repo_id: str, what: str, built: bool) -> SystemExit:
    return SystemExit(
        f"--push-to-hub {repo_id}: the repo is public on the Hub (or does not say it is private), and {what}; "
        "they are never put into a public repo, whatever "
        f"--private says (create_repo does not change an existing repo). Push to a new repo name (it is created "
        f"private), make {repo_id} private on the Hub first, or publish with --licences open. "
        + ("Nothing was uploaded." if built else "Nothing was built.")
    )


def _closed_words(closed: Counter) -> str:
    what = ", ".join(f"{n} {lic}" for lic, n in closed.most_common())
    return f"this build has images whose licence is not open ({what})"


def push_folder(
    folder: Path, repo_id: str, token: str | None = None, private: bool = False, api=None
) -> tuple[str, str]:
    """Upload the dataset folder as is to a Hub dataset repo; returns (repo URL, its visibility on the Hub).

    The folder's own ``license`` column decides: if any image's licence is not open, the repo must be
    private, and that is read back from the Hub (``repo_info``) before any upload, because ``create_repo``
    with ``exist_ok`` leaves an existing public repo public. ``api``: an HfApi."""
    api = api or hub_api(token or os.environ.get("HF_TOKEN"))
    closed = not_open(folder)
    if closed and repo_visibility(api, repo_id) == "public":
        raise refuse_public(repo_id, _closed_words(closed), built=True)
    repo = api.create_repo(repo_id=repo_id, repo_type="dataset", private=private or bool(closed), exist_ok=True)
    visibility = repo_visibility(api, repo_id)
    if closed and visibility != "private":  # a race, or a Hub that ignored private=True
        raise refuse_public(repo_id, _closed_words(closed), built=True)
    if private and visibility != "private":
        raise SystemExit(
            f"--push-to-hub {repo_id} --private: the repo already exists and is public on the Hub (create_repo "
            "does not change an existing repo's visibility). Make it private on the Hub, or push to a new repo "
            "name. Nothing was uploaded."
        )
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="Upload dataset built by `python -m data_prep publish`",
    )
    return str(getattr(repo, "url", repo)), visibility


def run(args: argparse.Namespace) -> int:
    out = args.out or args.work_dir / "dataset"
    t0 = time.perf_counter()
    token = private = None
    if args.repo_id:  # before the build: a bad token should cost seconds, not the whole build
        token = resolve_token(args.token)
        user = check_hub_token(token, args.repo_id)
        print(f"Hub token: {user or 'ok'}", flush=True)
        private = args.private or args.licences != "open"
        if args.licences != "open":
            if repo_visibility(hub_api(token), args.repo_id) == "public":
                raise refuse_public(
                    args.repo_id, f"--licences {args.licences} takes images whose licence is not open", built=False
                )
            if not args.private:
                print(
                    f"--licences {args.licences} includes images whose licence is not open: the Hub repo is created "
                    "private (there is no public push of them)",
                    flush=True,
                )
    counts = build_dataset(
        args.work_dir,
        out,
        args.max_shard_mb,
        args.pretty_name,
        args.licences,
        args.repo_id,
        getattr(args, "leave_out_untrainable", False),
    )
    left = counts["left_out_reasons"]
    lines = [(f"{s}", counts.get(s, 0)) for s in SPLITS] + [
        ("species with images / labels", f"{counts['species']} / {counts['labels']}"),
        ("size on disk", f"{counts['bytes_on_disk'] / 1e6:.1f} MB"),
        ("licences", "open only (--licences all: every image, private)" if args.licences == "open" else "all"),
        *([("left out (licence not open)", counts["left_out_by_licence"])] if args.licences == "open" else []),
        *[(f"  {why}", n) for why, n in left.items()],
        ("folder", out),
        ("time", f"{time.perf_counter() - t0:.1f} s"),
    ]
    if args.repo_id:
        try:
            url, visibility = push_folder(out, args.repo_id, token, private)
        except Exception as e:  # never show the token, even where a server echoes it back
            message = f"{type(e).__name__}: {e}"
            if token:
                message = message.replace(token, "<token>")
            raise SystemExit(f"push to {args.repo_id} failed: {message}") from None
        lines.append(("pushed to", f"{url} ({visibility}, as the Hub reports it)"))
    print_summary("publish", lines)
    print_species_splits(counts["per_species"])
    write_summary(args.work_dir, "publish", {k: v for k, v in counts.items() if k != "bytes_on_disk"})
    return 0


def print_species_splits(per_species: dict[str, dict[str, int]]) -> None:
    """The published split counts of every species (what a build really holds, species by species)."""
    print(f"\n== published images per species ({len(per_species)}) ==")
    print(f"  {'species':<44} {'train':>6} {'validation':>10} {'test':>6}")
    for sp, c in per_species.items():
        print(f"  {sp:<44} {c['train']:>6} {c['validation']:>10} {c['test']:>6}")
