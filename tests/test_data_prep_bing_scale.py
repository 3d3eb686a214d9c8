"""Bing keeps every result (formats, page URLs, browser User-Agent); dedup stays linear on copies of one image."""

from __future__ import annotations

import time

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Manifest
from data_prep.dedup import deduplicate, find_edges, mirror_edges
from tests.stand_ins.fake_web import FakeWeb


def test_bing_keeps_every_format_and_the_page_url(tmp_path, photos_dir):
    names = sorted(p.name for p in (photos_dir / "Amanita_muscaria").glob("webthumb_*.jpg"))[:4]
    with FakeWeb(photos_dir) as web:
        urls = [
            web.url(f"as/png/Amanita_muscaria/{names[0][:-4]}.png"),
            web.url(f"as/webp/Amanita_muscaria/{names[1][:-4]}.webp"),
            web.url(f"photos/Amanita_muscaria/{names[2]}"),
            web.url(f"as/webp/Amanita_muscaria/{names[3]}.webp"),  # ".jpg" inside the URL: never cut there
        ]
        web.results["Amanita muscaria"] = urls
        web.pages[urls[0]] = "https://blog.example/fly-agaric-walk"
        work = tmp_path / "work"
        assert main(["species", "--work-dir", str(work), "--only", "Amanita muscaria"]) == 0
        argv = ["crawl", "--work-dir", str(work), "--bing-url", web.bing_template, "--delay", "0", "--retries", "0"]
        assert main([*argv, "--user-agent", "Mozilla/5.0 (test browser)"]) == 0
    rows = {r["source_url"]: r for r in Manifest(work).rows()}
    assert set(rows) == set(urls)
    assert [rows[u]["raw_format"] for u in urls] == ["PNG", "WEBP", "JPEG", "WEBP"]
    assert all(rows[u]["status"] == "ok" for u in urls)
    assert rows[urls[0]]["origin"] == "https://blog.example/fly-agaric-walk"
    assert rows[urls[2]]["origin"] == urls[2].rsplit("/", 1)[0] + "/page.html"


def test_bing_default_user_agent_is_a_browser():
    from data_prep.http import BROWSER_USER_AGENT

    assert BROWSER_USER_AGENT.startswith("Mozilla/5.0") and "bot" not in BROWSER_USER_AGENT.lower()


def _row(iid, sha, phash, species="Sp", w=100):
    r = dict.fromkeys(MANIFEST_COLUMNS, "")
    r.update(image_id=iid, species=species, raw_sha256=sha, phash=phash, raw_width=str(w), raw_height="100")
    r.update(status="ok", raw_path=f"raw/{iid}.jpg")
    return r


def test_copies_of_one_placeholder_are_one_group_in_linear_edges():
    rows = [_row(f"p{i:05d}", "same-bytes", "8000000000000001", w=100 + (i == 1234)) for i in range(3000)]
    rows += [_row(f"x{i}", f"sha{i}", f"{(i * 0x9E3779B97F4A7C15) % 2**64:016x}") for i in range(1, 51)]
    t0 = time.perf_counter()
    edges = find_edges(rows, 10)
    inside = [e for e in edges if e[0].startswith("p") and e[1].startswith("p")]
    assert len(inside) == 2999  # a star, not 3000 * 2999 / 2 pairs
    deduplicate(rows, edges, 8, 10)
    kept = [r for r in rows if r["image_id"].startswith("p") and r["status"] == "ok"]
    assert [r["image_id"] for r in kept] == ["p01234"]  # the largest copy
    assert time.perf_counter() - t0 < 5


def test_mirrored_copies_share_a_split_group():
    a = _row("a", "sha-a", "f0f0f0f0f0f0f0f0")
    b = _row("b", "sha-b", "0123456789abcdef")
    c = _row("c", "sha-c", "fedcba9876543210")
    a["phash_mirror"], b["phash_mirror"], c["phash_mirror"] = "0123456789abcdee", "f0f0f0f0f0f0f0f1", "0000000000000000"
    pairs = mirror_edges([a, b, c], threshold=8)
    assert [(x, y) for x, y, _ in pairs] == [("a", "b")]
    deduplicate([a, b, c], find_edges([a, b, c], 10), 8, 10, [(x, y) for x, y, _ in pairs])
    assert a["dup_group"] == b["dup_group"] != c["dup_group"] and a["status"] == b["status"] == "ok"
