"""A local stand-in for the web a crawl talks to: Bing's image-results pages and the image hosts.

Used by the tests and benchmarks (nothing here is needed to build the real dataset; it lives under
``tests/`` so that the ``data_prep`` package ships no stand-ins). Demo from the repository root:
``python -m tests.stand_ins.fake_web --work-dir /tmp/e2e`` (the end-to-end run of data_prep/README.md). It serves
real photos read in place from a folder, plus the failures a crawl meets on the web::

    /images/async?q="Genus species"&first=N   Bing-like results page (div.imgpt > a[m] with "murl")
    /photos/<relpath>                        a real photo, as is
    /slow/<relpath>                          the same after ``slow_seconds``
    /flaky/<relpath>                         503 on the first request, then the photo
    /truncated/<relpath>                     the first 40% of the photo's bytes
    /html/<name>.jpg                         an HTML page disguised as a JPEG
    /tiny/<relpath>                          the photo shrunk to 10 x 8 px
    /as/<png|webp>/<relpath>                 the photo re-encoded as PNG / WebP (any suffix in the URL)
    anything else                            404

Start it with ``with FakeWeb(photos_dir) as web:``; ``web.url(path)`` and ``web.bing_template`` give
the addresses. ``web.results[name] = [urls]`` sets what a query for ``"name"`` returns.
"""

from __future__ import annotations

import html
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.stand_ins.local_server import LocalServer

PAGE_SIZE = 35  # Bing's async endpoint returns ~35 results per page while icrawler steps by 20


class FakeWeb(LocalServer):
    def __init__(self, photos_dir: str | Path, slow_seconds: float = 3.0, photo_delay: float = 0.0, port: int = 0):
        self.port = port  # 0: any free port
        self.photos_dir = Path(photos_dir).resolve()
        self.slow_seconds = slow_seconds
        self.photo_delay = photo_delay  # seconds added to every photo response (to make a crawl last)
        self.results: dict[str, list[str]] = {}
        self.pages: dict[str, str] = {}  # image URL -> the page it is shown on (Bing's "purl")
        self.requests: list[str] = []
        self._flaky_seen: set[str] = set()
        self._lock = threading.Lock()
        self._base = ""

    # -- addresses
    @property
    def base(self) -> str:
        assert self._base, "start the server first"
        return self._base  # kept after stop(): addresses recorded in a manifest stay comparable

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    @property
    def bing_template(self) -> str:
        return self.base + "/images/async?q={query}&first={first}"

    # -- lifecycle
    def start(self) -> FakeWeb:
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                with web._lock:
                    web.requests.append(self.path)
                try:
                    status, ctype, body = web.respond(self.path)
                except (BrokenPipeError, ConnectionResetError):
                    return
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._base = self.serve(Handler)
        return self

    # -- content
    def _photo(self, rel: str) -> bytes | None:
        path = (self.photos_dir / unquote(rel)).resolve()
        if self.photos_dir not in path.parents or not path.is_file():
            return None
        return path.read_bytes()

    def results_page(self, query: str, first: int) -> bytes:
        name = query.strip().strip('"')
        urls = self.results.get(name, [])[first : first + PAGE_SIZE]
        items = []
        for u in urls:
            page = self.pages.get(u, u.rsplit("/", 1)[0] + "/page.html")
            meta = {"murl": u, "purl": page, "turl": u + "?thumb", "t": name}
            m = html.escape(json.dumps(meta, separators=(",", ":")))
            items.append(f'<div class="imgpt"><a class="iusc" m="{m}" href="#"><img src="{html.escape(u)}"/></a></div>')
        return ('<html><body><div id="mmComponent_images_1">' + "".join(items) + "</div></body></html>").encode()

    def respond(self, raw_path: str) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        if path == "/images/async":
            qs = parse_qs(parts.query)
            return (
                200,
                "text/html; charset=utf-8",
                self.results_page(qs.get("q", [""])[0], int(qs.get("first", ["0"])[0])),
            )
        kind, _, rel = path.lstrip("/").partition("/")
        if kind == "html":
            return (
                200,
                "text/html",
                b"<html><head><title>Cookie consent</title></head><body>Accept cookies</body></html>",
            )
        if kind == "as":
            fmt, _, rel = rel.partition("/")
            stem = rel if rel.endswith(".jpg") else rel.rsplit(".", 1)[0]
            rel = stem if stem.endswith(".jpg") else stem + ".jpg"
        data = self._photo(rel) if kind in ("photos", "slow", "flaky", "truncated", "tiny", "as") else None
        if data is None:
            return 404, "text/html", b"<html><body>Not found</body></html>"
        if kind == "slow":
            time.sleep(self.slow_seconds)
        elif kind == "flaky":
            with self._lock:
                first_time = rel not in self._flaky_seen
                self._flaky_seen.add(rel)
            if first_time:
                return 503, "text/plain", b"busy"
        elif kind == "truncated":
            data = data[: int(len(data) * 0.4)]
        elif kind == "as":
            from PIL import Image

            buf = io.BytesIO()
            Image.open(io.BytesIO(data)).convert("RGB").save(buf, fmt.upper())
            return 200, f"image/{fmt}", buf.getvalue()
        elif kind == "tiny":
            from PIL import Image

            buf = io.BytesIO()
            Image.open(io.BytesIO(data)).convert("RGB").resize((10, 8)).save(buf, "JPEG")
            data = buf.getvalue()
        if self.photo_delay:
            time.sleep(self.photo_delay)
        return 200, "image/jpeg", data


def write_url_list(
    web: FakeWeb, out: str | Path, species: set[str] | None = None, sources: set[str] | None = None
) -> int:
    """A URL list (species,url,license,origin) for the photos of ``web.photos_dir``'s manifest.csv.

    Mimics an export from GBIF / iNaturalist / Mushroom Observer: the served photos with the licence
    and origin the shared manifest gives. Optionally only some species / sources. Returns the row count.
    """
    from data_prep.common import read_csv, write_csv

    rows = []
    for row in read_csv(web.photos_dir / "manifest.csv"):
        if species is not None and row["species"] not in species:
            continue
        if sources is not None and row["source"] not in sources:
            continue
        rel = row["path"].split("/", 1)[1]  # "photos/<Genus_species>/<file>"
        rows.append(
            {
                "species": row["species"],
                "url": web.url(f"photos/{rel}"),
                "license": row["license"],
                "origin": row["origin"],
            }
        )
    return write_csv(out, rows, ("species", "url", "license", "origin"))


def chain_argv(work_dir: Path, url_list: Path, *more: str) -> list[str]:
    """``python -m data_prep all`` over a URL list of this stand-in: every image, no delay (one local host),
    every licence published (``--licences all``: the shared photos are mostly of unknown licence)."""
    return ["all", "--work-dir", str(work_dir), "--source", "url-list", "--url-list", str(url_list),
            "--per-species", "0", "--delay", "0", "--licences", "all", *more]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.stand_ins.fake_web [--work-dir DIR] [options of "all"]``: the whole chain on ../shared.

    Serves the shared photos on 127.0.0.1, writes a URL list of them (with their licences) and runs
    ``python -m data_prep all --source url-list`` against it: the end-to-end run quoted in the README.
    """
    import argparse
    import time

    from data_prep.__main__ import main as data_prep_main
    from data_prep.common import DEFAULT_WORK_DIR
    from mushroom_id.core.paths import shared_photos_dir

    parser = argparse.ArgumentParser(prog="python -m tests.stand_ins.fake_web")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR.parent / "data_shared")
    parser.add_argument("--photos", type=Path, default=shared_photos_dir())
    parser.add_argument("--port", type=int, default=8765, help="fixed, so that URLs (and image ids) stay stable")
    args, rest = parser.parse_known_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with FakeWeb(args.photos, port=args.port) as web:
        url_list = args.work_dir / "shared_photos_urls.csv"
        write_url_list(web, url_list)
        t0 = time.perf_counter()
        code = data_prep_main(chain_argv(args.work_dir, url_list, "--min-side", "64", *rest))
        print(f"\nend-to-end: {time.perf_counter() - t0:.1f} s")
        return code


if __name__ == "__main__":
    raise SystemExit(main())
