"""Reading user images safely: any common format in, an RGB PIL image out, or a clear error.

Handles EXIF orientation, palette/alpha/16-bit/grayscale/CMYK modes, animated files
(first frame), truncated files, non-images and decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 25 * 1024 * 1024  # 25 MB: far above any phone JPEG
MAX_PIXELS = 60_000_000  # ~ 7,700 x 7,700; decoding more could exhaust a free Space's memory
MIN_SIDE = 16  # below this nothing can be recognised
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}


class ImageError(ValueError):
    """The input is not a usable photo; the message is meant for the user."""


ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or source.size == 0:
            raise ImageError(f"an image array must be HxW or HxWxC, got shape {source.shape}")
        return Image.fromarray(source.astype(np.uint8) if source.dtype != np.uint8 else source)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = "the uploaded data"
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path} does not exist or is not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path.name} is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
        data = path.read_bytes()
        name = path.name
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name} is {len(data) / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(_open_error(name, e)) from e
    except Exception as e:  # any decoder error on hostile data
        raise ImageError(
            f"{name} could not be read as an image ({type(e).__name__}); upload a JPEG or PNG photo"
        ) from e
    if img.format not in ALLOWED_FORMATS:
        raise ImageError(f"{name} is in {img.format} format, which is not accepted; upload a JPEG, PNG or WebP photo")
    return img


def _open_error(name: str, e: Exception) -> str:
    if isinstance(e, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"{name} has too many pixels to decode safely; upload a photo under {MAX_PIXELS // 1_000_000} megapixels"
    return f"{name} is not an image file (JPEG, PNG, WebP...)"


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / hi)).clip(0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = arr.min(), arr.max()
        img = Image.fromarray(((arr - lo) * (255.0 / ((hi - lo) or 1.0))).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


def load_image(source: ImageSource, draft_size: int | None = 448) -> Image.Image:
    """Decode ``source`` (path, bytes, PIL image or array) into an upright RGB image.

    ``draft_size``: let the JPEG decoder downscale by a power of two while staying at
    least this large (much faster for big photos; the model sees ~224 px anyway).
    Raises :class:`ImageError` with a user-facing message for anything unusable.
    """
    img = _open(source)
    name = Path(source).name if isinstance(source, str | os.PathLike) else "the image"  # which photo, in messages
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name} is {w}x{h} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels - downscale it first"
        )
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name} is only {w}x{h} pixels; upload a photo at least {MIN_SIDE} px on each side")
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        if draft_size and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
            img.draft("RGB", (draft_size, draft_size))  # EXIF is kept; the transpose below still applies
        img.load()
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(
            f"{name} could not be decoded ({type(e).__name__}: {e}); it may be truncated or corrupt"
        ) from e
