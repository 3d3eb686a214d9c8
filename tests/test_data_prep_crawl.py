"""Crawl stage against a local stand-in of Bing and the image hosts (real photos from ../shared)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import Manifest
from data_prep.crawl import DONE, image_id
from mushroom_id.core.paths import REPO_DIR
from tests.stand_ins.fake_web import FakeWeb

FAST = ["--timeout", "1.5", "--retries", "1", "--backoff", "0.01", "--delay", "0"]


@pytest.fixture()
def web(photos_dir):
    with FakeWeb(photos_dir, slow_seconds=6.0) as server:
        yield server


def _photos(photos_dir: Path, folder: str, n: int, prefix: str = "") -> list[str]:
    return sorted(p.name for p in (photos_dir / folder).glob(f"{prefix}*.jpg"))[:n]


def _by_url(rows):
    return {r["source_url"]: r for r in rows}


def test_every_kind_of_url_ends_in_the_manifest_with_the_right_outcome(tmp_path, web, photos_dir, photo_manifest):
    good = _photos(photos_dir, "Amanita_muscaria", 6, "webthumb")
    urls = {
        "good": [web.url(f"photos/Amanita_muscaria/{n}") for n in good[:3]],
        "404": web.url("missing/Amanita_muscaria/gone.jpg"),
        "slow": web.url(f"slow/Amanita_muscaria/{good[3]}"),
        "html": web.url("html/amanita_muscaria_photo.jpg"),
        "truncated": web.url(f"truncated/Amanita_muscaria/{good[4]}"),
        "tiny": web.url(f"tiny/Amanita_muscaria/{good[5]}"),
        "flaky": web.url(f"flaky/Amanita_muscaria/{good[5]}"),
    }
    web.results["Amanita muscaria"] = urls["good"] + [
        urls[k] for k in ("404", "slow", "html", "truncated", "tiny", "flaky")
    ]
    web.results["Boletus edulis"] = [
        web.url(f"photos/Boletus_edulis/{n}") for n in _photos(photos_dir, "Boletus_edulis", 2)
    ]
    work = tmp_path / "work"
    assert main(["species", "--work-dir", str(work), "--only", "Amanita muscaria,Boletus edulis"]) == 0
    assert main(["crawl", "--work-dir", str(work), "--bing-url", web.bing_template, *FAST]) == 0

    rows = Manifest(work).rows()
    by_url = _by_url(rows)
    assert len(rows) == 9 + 2
    truth = {row["path"].split("/", 1)[1]: row for row in photo_manifest}  # "<Genus_species>/<file>" -> row
    for url in urls["good"] + [urls["flaky"]]:  # flaky: 503 once, then served: the retry got it
        row = by_url[url]
        assert row["status"] == "ok", row
        served = truth["Amanita_muscaria/" + url.rsplit("/", 1)[1]]
        assert row["raw_sha256"] == served["sha256"]  # the bytes on disk are the photo, unchanged
        assert hashlib.sha256((work / row["raw_path"]).read_bytes()).hexdigest() == served["sha256"]
        with Image.open(work / row["raw_path"]) as img:
            assert (int(row["raw_width"]), int(row["raw_height"])) == img.size
        assert row["image_id"] == image_id("Amanita muscaria", url) and row["crawler"] == "bing"
        assert row["query"] == '"Amanita muscaria"'
    assert by_url[urls["404"]]["drop_reason"] == "http 404"
    assert by_url[urls["slow"]]["drop_reason"] == "timeout after 2 tries"
    assert by_url[urls["html"]]["drop_reason"] == "not an image (text/html)"
    assert by_url[urls["tiny"]]["drop_reason"] == "too small (10x8, min side 64)"
    for key in ("404", "slow", "html", "tiny"):
        row = by_url[urls[key]]
        assert row["status"] == "dropped" and row["drop_stage"] == "crawl" and not row["raw_path"]
    # a truncated JPEG has a valid header: the crawl keeps it, normalize must drop it
    assert by_url[urls["truncated"]]["status"] == "ok"
    assert sum(r["species"] == "Boletus edulis" and r["status"] == "ok" for r in rows) == 2
    # the query went to the results page in quotes
    assert any("q=%22Amanita+muscaria%22" in p for p in web.requests)

    assert main(["dedup", "--work-dir", str(work), "--workers", "1"]) == 0
    assert main(["normalize", "--work-dir", str(work), "--workers", "1"]) == 0
    row = _by_url(Manifest(work).rows())[urls["truncated"]]
    assert (row["status"], row["drop_stage"]) == ("dropped", "normalize")
    assert row["drop_reason"].startswith("truncated or corrupt")


def test_synonym_queries_file_under_accepted_name_and_targets_cap(tmp_path, web, photos_dir):
    # Imleria badia was also called Boletus badius: the original had both as classes.
    photos = [web.url(f"photos/Imleria_badia/{n}") for n in _photos(photos_dir, "Imleria_badia", 6)]
    web.results["Imleria badia"] = photos[:2]
    web.results["Boletus badius"] = photos[1:6]  # overlaps the first query: counted once
    web.results["Amanita phalloides"] = [
        web.url(f"photos/Amanita_muscaria/{n}") for n in _photos(photos_dir, "Amanita_muscaria", 8, "webthumb")
    ]
    work = tmp_path / "work"
    main(
        [
            "species",
            "--work-dir",
            str(work),
            "--only",
            "Imleria badia,Amanita phalloides",
            "--per-species",
            "3",
            "--toxic-factor",
            "2",
        ]
    )
    species_csv = (work / "species.csv").read_text()
    assert "Boletus badius" in species_csv
    main(["crawl", "--work-dir", str(work), "--bing-url", web.bing_template, "--downloader-threads", "1", *FAST])
    rows = [r for r in Manifest(work).rows() if r["status"] == "ok"]
    badia = [r for r in rows if r["species"] == "Imleria badia"]
    assert len(badia) == 3  # the target, although 6 different photos were offered
    assert {r["query"] for r in badia} == {'"Imleria badia"', '"Boletus badius"'}
    assert all(r["raw_path"].startswith("raw/Imleria_badia/") for r in badia)
    assert not any("Boletus_badius" in r["raw_path"] for r in rows)
    # deadly species get --toxic-factor times more images
    assert sum(r["species"] == "Amanita phalloides" for r in rows) == 6


def _crawl_cmd(work: Path, web: FakeWeb) -> list[str]:
    return [
        "crawl",
        "--work-dir",
        str(work),
        "--bing-url",
        web.bing_template,
        "--downloader-threads",
        "1",
        "--crawl-workers",
        "1",
        *FAST,
    ]


def _snapshot(work: Path):
    rows = Manifest(work).rows()
    files = {p.relative_to(work).as_posix(): p.read_bytes() for p in (work / "raw").rglob("*") if p.is_file()}
    return rows, files


@pytest.mark.slow
def test_crawl_killed_midway_then_rerun_equals_uninterrupted_crawl(tmp_path, photos_dir):
    with FakeWeb(photos_dir, photo_delay=0.08) as web:
        vag = _photos(photos_dir, "Amanita_vaginata", 24, "webthumb")
        results = [web.url(f"photos/Amanita_vaginata/{n}") for n in vag]
        results.insert(5, web.url("missing/nothing.jpg"))
        results.insert(9, web.url("html/page.jpg"))
        web.results["Amanita vaginata"] = results
        web.results["Boletus edulis"] = [
            web.url(f"photos/Boletus_edulis/{n}") for n in _photos(photos_dir, "Boletus_edulis", 6)
        ]
        args = ["--only", "Amanita vaginata,Boletus edulis", "--per-species", "20"]

        whole = tmp_path / "whole"
        main(["species", "--work-dir", str(whole), *args])
        main(_crawl_cmd(whole, web))

        killed = tmp_path / "killed"
        main(["species", "--work-dir", str(killed), *args])
        env = {**os.environ, "PYTHONPATH": str(REPO_DIR)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "data_prep", *_crawl_cmd(killed, web)],
            cwd=REPO_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        journal = killed / "crawl" / "Amanita_vaginata.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline:
            if journal.is_file() and journal.read_text().count("\n") >= 8:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines = journal.read_text().splitlines()
        assert 8 <= len(lines) < 22 and DONE not in journal.read_text()  # really killed midway
        assert not (killed / "manifest.parquet").exists() and not (killed / "manifest.csv").exists()

        fetched_before = sum("/photos/Amanita_vaginata/" in p for p in web.requests)
        n_requests = len(web.requests)
        main(_crawl_cmd(killed, web))
        refetched = [p for p in web.requests[n_requests:] if "/photos/Amanita_vaginata/" in p]
        after_rerun = _snapshot(killed)
        # a third run has nothing to do: every species is done
        n = len(web.requests)
        main(_crawl_cmd(killed, web))
        third_run_requests = len(web.requests) - n

    whole_rows, whole_files = _snapshot(whole)
    killed_rows, killed_files = after_rerun
    assert killed_rows == whole_rows
    assert killed_files == whole_files
    assert sum(r["status"] == "ok" and r["species"] == "Amanita vaginata" for r in whole_rows) == 20
    # the rerun did not fetch again what the killed run had already journaled
    already = {line.split('"url": "')[1].split('"')[0] for line in lines if '"url": "' in line}
    assert not {p for p in refetched if any(u.endswith(p) for u in already)}
    assert fetched_before > 0
    # no temporary files left behind
    assert not [p for p in (killed / "raw").rglob("*.tmp")]
    assert third_run_requests == 0
    assert _snapshot(killed) == (whole_rows, whole_files)


def test_every_source_is_one_module_with_one_interface(tmp_path):
    import argparse

    from data_prep.crawl import CRAWLERS, RateLimiter
    from data_prep.sources import SOURCE_MODULES, Job, get_source

    assert CRAWLERS == tuple(SOURCE_MODULES) == ("bing", "google", "url-list", "gbif")
    row = {"species": "Amanita muscaria", "queries": "Amanita muscaria; Agaricus muscarius", "target": "5"}
    for name in CRAWLERS:
        source = get_source(name)
        assert source.name == name and source.feeder in ("bing", "google", "url-list")
        assert callable(source.prepare) and callable(source.jobs)
    jobs, info = get_source("bing").jobs(row, argparse.Namespace())
    assert [j.query for j in jobs] == ['"Amanita muscaria"', '"Agaricus muscarius"'] and info == {}
    urls = tmp_path / "urls.csv"
    urls.write_text("species,url,license\nAmanita muscaria,http://x/1.jpg,CC BY 4.0\nNot a species,http://x/2.jpg,\n")
    source = get_source("url-list")
    args = argparse.Namespace(url_list=urls)
    kept, dropped = source.prepare(args, [row], RateLimiter(0))
    assert kept == [row] and [d["drop_reason"] for d in dropped] == ["not a catalog species: Not a species"]
    (job,), _ = source.jobs(row, args)
    assert isinstance(job, Job) and job.query == "url-list:urls.csv" and job.candidates[0]["url"] == "http://x/1.jpg"
