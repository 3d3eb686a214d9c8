"""ingest: take in a local folder of photos (e.g. ../shared/data/photos), like a crawl that needs no network.

    python -m data_prep ingest --from ../shared/data/photos      # then dedup, normalize, split, publish

The folder holds ``manifest.csv`` (columns ``species``, ``path`` and optionally ``source``, ``origin``,
``license``, ``creator`` (or ``author`` / ``artist`` / ``photographer``), ``rights_holder``; ``path``
relative to the folder or to its parent, as in ../shared) or, without a manifest, ``<Genus_species>/*.jpg``.
Each photo becomes a manifest row like a crawled one: its bytes are copied to
``raw/<Genus_species>/<image_id>.<ext>``; ``source`` (the collection: ``inat``, ``kaggle215``, ...),
``origin`` (observation URL, Commons page...), the creator and the licence (normalised to an id by
:mod:`data_prep.licences`, the text kept in ``license_raw``) are kept, so the split can hold sources
out and group photos of one observation, and publish can credit each photo. A file that is not an
image, or a decompression bomb (more pixels than ``mushroom_id.core.images.MAX_PIXELS``), is kept as a
dropped row with its reason; the rest of the folder is taken in. Names are resolved through the
catalog (synonyms merge); photos of taxa outside it are kept as dropped rows with the reason.

Ids depend only on the species and the path *inside* the folder, never on where the folder is, so
the same photos give the same ids, the same dedup groups and the same split on every machine.
The rows of each folder are also kept in ``local/<folder name>.csv``: ``crawl`` rewrites the manifest
from its own journals and takes these rows along.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
from pathlib import Path

from .common import (
    MANIFEST_COLUMNS,
    Manifest,
    add_common_arguments,
    announce_left_out,
    atomic_write_bytes,
    image_id,
    read_csv,
    reason_kind,
    report,
    species_dir_name,
    write_csv,
)
from .licences import clean_creator, normalise_licence

CRAWLER = "local"
# Column names a folder manifest may use for the photographer and the rights holder (first non-empty wins).
CREATOR_COLUMNS = ("creator", "author", "artist", "photographer", "attribution")
RIGHTS_HOLDER_COLUMNS = ("rights_holder", "rightsHolder", "copyright")


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("ingest")
    g.add_argument(
        "--from",
        dest="source_dir",
        type=Path,
        default=None,
        help="folder of photos: manifest.csv (species,path[,source,origin,license]) or <Genus_species>/*",
    )
    g.add_argument(
        "--source-name",
        default=None,
        help="source of every photo when the folder has no manifest with a source column (default: the folder's name)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def folder_entries(folder: Path, source_name: str | None = None) -> list[dict]:
    """(species as written, file, path inside the folder, source, origin, license) of every photo."""
    folder = folder.resolve()
    default_source = source_name or folder.name
    manifest = folder / "manifest.csv"
    entries = []
    if manifest.is_file():
        for row in read_csv(manifest):
            rel = (row.get("path") or "").strip()
            if not rel:
                continue
            file = folder / rel if (folder / rel).is_file() else folder.parent / rel
            inside = file.resolve().relative_to(folder).as_posix() if file.resolve().is_relative_to(folder) else rel
            entries.append(
                {
                    "name": (row.get("species") or "").strip(),
                    "file": file,
                    "rel": inside,
                    "source": (row.get("source") or "").strip() or default_source,
                    "origin": (row.get("origin") or "").strip(),
                    "license": (row.get("license") or row.get("licence") or "").strip(),
                    "creator": first_of(row, CREATOR_COLUMNS),
                    "rights_holder": first_of(row, RIGHTS_HOLDER_COLUMNS),
                }
            )
    else:
        for species_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
            for file in sorted(species_dir.iterdir()):
                # every file but hidden ones (.DS_Store...): one that is not an image is named as left out
                if file.is_file() and not file.name.startswith("."):
                    entries.append(
                        {
                            "name": species_dir.name.replace("_", " "),
                            "file": file,
                            "rel": file.relative_to(folder).as_posix(),
                            "source": default_source,
                            "origin": "",
                            "license": "",
                            "creator": "",
                            "rights_holder": "",
                        }
                    )
    if not entries:
        raise FileNotFoundError(f"{folder}: no photos (expected manifest.csv or <Genus_species>/ folders of images)")
    return entries


def first_of(row: dict, columns: tuple[str, ...]) -> str:
    """The first non-empty of ``columns`` in a folder manifest's row (creators come under several names)."""
    return next((clean_creator(row[c]) for c in columns if (row.get(c) or "").strip()), "")


def inspect_file(data: bytes) -> tuple[int, int, str] | str:
    """(width, height, format) from the header of an image file, or why it cannot be taken in.

    A decompression bomb (more pixels than the app ever decodes, e.g. a 20000 x 20000 PNG of a few kB) is
    refused here, by its header, before anything decodes it."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from mushroom_id.core.images import MAX_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height, fmt = im.width, im.height, im.format or ""
    except Image.DecompressionBombError as e:
        size = re.search(r"\((\d+) pixels\)", str(e))
        return f"decompression bomb ({size.group(1) if size else 'too many'} pixels, limit {MAX_PIXELS})"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "not an image"
    if width * height > MAX_PIXELS:
        return f"decompression bomb ({width}x{height} = {width * height} pixels, limit {MAX_PIXELS})"
    return width, height, fmt


def ingest_folder(work_dir: Path, folder: Path, catalog, source_name: str | None = None) -> list[dict]:
    """Copy the folder's photos into ``raw/`` and return their manifest rows (also in ``local/<name>.csv``)."""
    from tqdm import tqdm

    rows, files = [], []
    for e in tqdm(folder_entries(folder, source_name), desc="ingest", unit="img", disable=None):
        accepted = catalog.resolve(e["name"]) if e["name"] else None
        species = accepted or e["name"]
        url = f"{CRAWLER}:{folder.resolve().name}/{e['rel']}"
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(
            {
                "image_id": image_id(species, url),
                "species": species,
                "query": f"{CRAWLER}:{folder.name}",
                "crawler": CRAWLER,
                "source": e["source"],
                "source_url": url,
                "license": normalise_licence(e["license"]),
                "license_raw": e["license"],
                "origin": e["origin"],
                "creator": e["creator"],
                "rights_holder": e["rights_holder"],
                "status": "ok",
            }
        )
        rows.append(row)
        files.append({"image_id": row["image_id"], "file": str(e["file"])})
        if accepted is None:
            row.update(status="dropped", drop_stage="crawl", drop_reason=f"not a catalog species: {e['name']}")
            continue
        try:
            data = e["file"].read_bytes()
        except OSError as err:
            row.update(
                status="dropped", drop_stage="crawl", drop_reason=f"unreadable file ({err.strerror}): {e['rel']}"
            )
            continue
        info = inspect_file(data)
        if isinstance(info, str):
            row.update(status="dropped", drop_stage="crawl", drop_reason=f"{info}: {e['rel']}")
            continue
        ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}.get(info[2], e["file"].suffix.lower())
        raw_path = f"raw/{species_dir_name(species)}/{row['image_id']}{ext}"
        target = work_dir / raw_path
        if not (target.is_file() and target.stat().st_size == len(data)):
            atomic_write_bytes(target, data)
        row.update(
            raw_path=raw_path,
            raw_sha256=hashlib.sha256(data).hexdigest(),
            raw_width=info[0],
            raw_height=info[1],
            raw_format=info[2],
        )
    write_csv(work_dir / "local" / f"{folder.resolve().name}.csv", rows, MANIFEST_COLUMNS)
    # the user's own path of each photo, so that every file left out later is named as the user knows it
    write_csv(work_dir / "local" / "paths" / f"{folder.resolve().name}.csv", files, ("image_id", "file"))
    return rows


def ingested_rows(work_dir: Path) -> list[dict]:
    """Every row ``ingest`` took in, with the later stages' columns empty (fresh for dedup/normalize/split)."""
    rows = []
    for file in sorted((Path(work_dir) / "local").glob("*.csv")):
        rows += [{c: row.get(c) or "" for c in MANIFEST_COLUMNS} for row in read_csv(file)]
    return rows


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from mushroom_id.core.catalog import default_catalog

    if args.source_dir is None:
        raise SystemExit("ingest needs --from FOLDER (e.g. --from ../shared/data/photos)")
    if not args.source_dir.is_dir():
        raise FileNotFoundError(f"{args.source_dir}: no such folder")
    work_dir: Path = args.work_dir
    new = ingest_folder(work_dir, args.source_dir, default_catalog(), args.source_name)
    manifest = Manifest(work_dir)
    taken = {r["image_id"] for r in new}
    others = [r for r in manifest.rows() if r["image_id"] not in taken] if manifest.exists() else []
    manifest.write(others + new)
    kept = [r for r in new if r["status"] == "ok"]
    refused = [r for r in new if r["status"] != "ok"]
    reasons = Counter(reason_kind(r["drop_reason"]) for r in refused)
    summary = {
        "folder": str(args.source_dir),
        "photos": len(new),
        "kept": len(kept),
        "species": len({r["species"] for r in kept}),
        "sources": dict(Counter(r["source"] for r in kept)),
        "dropped": dict(reasons),
        "files_not_taken_in": {
            r["drop_reason"].rpartition(": ")[2]: r["drop_reason"].rpartition(": ")[0]
            for r in refused
            if r["drop_stage"] == "crawl" and not r["drop_reason"].startswith("not a catalog species")
        },
    }
    code = report(work_dir, "ingest", summary)
    announce_left_out(work_dir, others + new, "ingest")
    return code
