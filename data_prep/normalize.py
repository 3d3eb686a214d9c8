"""normalize: every kept image becomes an upright RGB JPEG, resized, in images/<Genus_species>/<id>.jpg.

* EXIF orientation is applied, then all metadata (EXIF, GPS) is stripped; palette / alpha / CMYK /
  16-bit images become RGB (``mushroom_id.core.images.load_image``, the same reader the app uses).
* ``--resize longest`` (default): the longer side becomes at most ``--size`` (600) px, aspect kept,
  never upscaled. The whole mushroom stays in the picture and nothing is distorted; training crops
  and resizes at load time (random-resized-crop), so a fixed square here would only throw pixels away
  or stretch them. ``shortest`` (shorter side = 600, aspect kept: the usual input for center crops)
  and ``square`` (600 x 600, stretched, like the original project) are available.
* Dropped with a reason: not an image, truncated or corrupt, tiny (shorter side < ``--min-side``),
  grayscale-only (no colour information: colour is a key feature for fungi).
* Two images that become the same bytes are exact duplicates: the later one is dropped.
* Resumable: results are journaled per (image, raw sha256, settings); outputs written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from collections import Counter
from pathlib import Path

from .common import (
    Journal,
    Stage,
    add_common_arguments,
    atomic_write_bytes,
    drop,
    parallel_map,
    reason_kind,
    species_dir_name,
)

RESIZE_MODES = ("longest", "shortest", "square")
GRAY_CHROMA = 6  # max channel difference (0-255) under which a pixel counts as gray


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("normalize")
    g.add_argument("--size", type=int, default=600, help="target size in pixels (default 600, as the original)")
    g.add_argument("--resize", choices=RESIZE_MODES, default="longest", help="how --size applies (see above)")
    g.add_argument("--quality", type=int, default=90, help="JPEG quality")
    g.add_argument(
        "--min-side-px",
        type=int,
        default=64,
        dest="min_side_px",
        help="drop images whose shorter side is below this before resizing",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def target_size(w: int, h: int, size: int, mode: str) -> tuple[int, int]:
    if mode == "square":
        return size, size
    scale = size / (max(w, h) if mode == "longest" else min(w, h))
    if scale >= 1:
        return w, h  # never upscale
    return max(1, round(w * scale)), max(1, round(h * scale))


def is_grayscale(img) -> bool:
    """True when (almost) no pixel has colour: a black-and-white photo or a scan."""
    import numpy as np

    small = np.asarray(img.convert("RGB").resize((64, 64)), dtype=np.int16)
    chroma = small.max(axis=2) - small.min(axis=2)
    return float(np.percentile(chroma, 99)) <= GRAY_CHROMA


def normalize_image(
    data: bytes, size: int = 600, mode: str = "longest", min_side: int = 64, quality: int = 90
) -> tuple[bytes | None, str, tuple[int, int]]:
    """(JPEG bytes, "", (w, h)) or (None, reason, (0, 0)) for one image's raw bytes."""
    from PIL import Image, UnidentifiedImageError

    from mushroom_id.core.images import ImageError, load_image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h, src_mode = *probe.size, probe.mode
    except Image.DecompressionBombError:  # a header claiming far too many pixels
        return None, "too many pixels (possible decompression bomb)", (0, 0)
    except (UnidentifiedImageError, OSError, ValueError):
        return None, "not an image", (0, 0)
    if min(w, h) < min_side:
        return None, f"tiny ({w}x{h}, min side {min_side})", (0, 0)
    try:
        img = load_image(data, draft_size=None)
    except ImageError as e:
        text = str(e)
        if "truncated" in text or "decoded" in text:
            return None, f"truncated or corrupt ({e.__cause__ or text})", (0, 0)
        return None, f"unreadable ({text})", (0, 0)
    if src_mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") or is_grayscale(img):
        return None, "grayscale only", (0, 0)
    tw, th = target_size(*img.size, size, mode)
    if (tw, th) != img.size:
        img = img.resize((tw, th), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue(), "", img.size


_SETTINGS: dict = {}


def _normalize_one(item: tuple[str, str, str, str]) -> dict:
    """Worker: (key, image_id, raw file, output file) -> journal record."""
    key, iid, src, dst = item
    s = _SETTINGS
    from mushroom_id.core.images import MAX_FILE_BYTES

    try:
        size = Path(src).stat().st_size
        if size > MAX_FILE_BYTES:  # never read an unbounded file into memory
            return {"key": key, "image_id": iid, "reason": f"too large ({size / 1e6:.0f} MB)"}
        data = Path(src).read_bytes()
    except OSError as e:
        return {"key": key, "image_id": iid, "reason": f"missing file ({e.__class__.__name__})"}
    try:
        out, reason, (w, h) = normalize_image(data, s["size"], s["mode"], s["min_side"], s["quality"])
    except Exception as e:  # one hostile file must never stop a run of hours: drop it with the reason
        return {"key": key, "image_id": iid, "reason": f"unreadable ({type(e).__name__}: {e})"[:300]}
    if out is None:
        return {"key": key, "image_id": iid, "reason": reason}
    atomic_write_bytes(Path(s["work_dir"]) / dst, out)
    return {
        "key": key,
        "image_id": iid,
        "reason": "",
        "path": dst,
        "sha256": hashlib.sha256(out).hexdigest(),
        "width": w,
        "height": h,
    }


def run(args: argparse.Namespace) -> int:
    work_dir: Path = args.work_dir
    stage = Stage("normalize", work_dir)
    live = stage.live
    settings = f"{args.resize}-{args.size}-q{args.quality}-min{args.min_side_px}"
    _SETTINGS.update(
        size=args.size, mode=args.resize, min_side=args.min_side_px, quality=args.quality, work_dir=str(work_dir)
    )
    journal = Journal(work_dir / "cache" / "normalize.jsonl", key="key")
    done = journal.load()

    def key_of(r: dict) -> str:
        return f"{r['image_id']}:{r['raw_sha256']}:{settings}"

    def out_of(r: dict) -> str:
        return f"images/{species_dir_name(r['species'])}/{r['image_id']}.jpg"

    todo = [
        (key_of(r), r["image_id"], str(work_dir / r["raw_path"]), out_of(r))
        for r in live
        if key_of(r) not in done or (not done[key_of(r)]["reason"] and not (work_dir / out_of(r)).is_file())
    ]
    t0 = time.perf_counter()
    if getattr(args, "engine", "local") == "ray" and todo:
        from . import ray_engine

        ray_engine.ensure_ray(args.address, args.workers)
        results = ray_engine.normalized(work_dir, todo, dict(_SETTINGS))
    else:
        results = parallel_map(_normalize_one, todo, args.workers, total=len(todo), desc="normalize")
    with journal:
        for rec in results:
            done[rec["key"]] = rec
            journal.append(rec)
    seconds = time.perf_counter() - t0

    first_of_sha: dict[str, str] = {}
    for r in sorted(live, key=lambda r: r["image_id"]):
        rec = done[key_of(r)]
        if rec["reason"]:
            drop(r, "normalize", rec["reason"])
            continue
        if rec["sha256"] in first_of_sha:
            drop(r, "normalize", f"identical after normalization to {first_of_sha[rec['sha256']]}")
            r["duplicate_of"] = first_of_sha[rec["sha256"]]
            continue
        first_of_sha[rec["sha256"]] = r["image_id"]
        r.update(path=rec["path"], sha256=rec["sha256"], width=str(rec["width"]), height=str(rec["height"]))
    stage.write()

    # files of images that are no longer kept (or from other settings) would only confuse
    wanted = {r["path"] for r in live if r["path"]}
    images_dir = work_dir / "images"
    removed = 0
    if images_dir.is_dir():
        for f in images_dir.glob("*/*.jpg"):
            if f.relative_to(work_dir).as_posix() not in wanted:
                f.unlink()
                removed += 1
    reasons = Counter(reason_kind(r["drop_reason"]) for r in live if r["drop_stage"] == "normalize")
    kept = sum(r["status"] == "ok" for r in live)
    summary = {
        "images_in": len(live),
        "processed_now": len(todo),
        "reused_from_journal": len(live) - len(todo),
        "images_kept": kept,
        "dropped": dict(sorted(reasons.items())),
        "resize": args.resize,
        "size": args.size,
        "seconds": round(seconds, 1),
        "images_per_second": round(len(todo) / seconds, 1) if todo and seconds else None,
        "workers": args.workers,
        "engine": getattr(args, "engine", "local"),
        "settings": settings,
        "stale_files_removed": removed,
    }
    return stage.finish(summary)
