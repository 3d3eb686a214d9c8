import io

import numpy as np
import pytest
from PIL import Image

from mushroom_id.core.images import ImageError, load_image


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_real_photo_from_path_bytes_and_pil(photo_of):
    path = photo_of("Amanita muscaria")
    a = load_image(path)
    b = load_image(path.read_bytes())
    c = load_image(Image.open(path))
    assert a.mode == b.mode == c.mode == "RGB"
    assert a.size == b.size and min(a.size) >= 16


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "CMYK", "1"])
def test_modes_become_rgb(photo_of, mode):
    img = Image.open(photo_of("Boletus edulis")).convert("RGB")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
    else:
        img = img.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = load_image(_bytes(img, fmt))
    assert out.mode == "RGB" and out.size == img.size
    assert np.asarray(out).std() > 5  # still a picture, not a blank


def test_exif_orientation_is_applied(photo_of):
    img = Image.open(photo_of("Boletus edulis")).convert("RGB")
    w, h = img.size
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    out = load_image(_bytes(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (h, w)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"<html><body>not a picture</body></html>", "not an image"),
        (bytes(range(256)) * 40, "not an image"),
    ],
)
def test_garbage_gets_clear_error(data, words):
    with pytest.raises(ImageError, match=words):
        load_image(data)


def test_truncated_jpeg(photo_of):
    data = photo_of("Amanita muscaria").read_bytes()
    with pytest.raises(ImageError, match="truncated|corrupt|decoded"):
        load_image(data[: len(data) // 3])


def test_tiny_and_bomb():
    with pytest.raises(ImageError, match="only 1x1"):
        load_image(_bytes(Image.new("RGB", (1, 1)), "PNG"))
    bomb = _bytes(Image.new("1", (30_000, 30_000)), "PNG")  # ~100 KB file, 900 megapixels
    with pytest.raises(ImageError, match="pixels"):
        load_image(bomb)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
