"""crawl: download images for each selected species with icrawler (Bing, Google, a URL list or GBIF).

* Sources (one module each in ``data_prep/sources/``, one interface: which species, which jobs):
  ``bing`` (default; query ``"Genus species"`` in quotes, once per name of the species),
  ``google`` (icrawler's Google parser breaks often upstream: optional), ``url-list`` (a CSV with
  ``species,url[,license,origin]``: exports from GBIF / iNaturalist / Mushroom Observer, which carry
  licences), ``gbif`` (licensed photos listed by GBIF's API).
* Per species: ``target`` images from species.csv (``--per-species``, times ``--toxic-factor`` for
  dangerous species). Queries run in order (accepted name first) until the target is reached.
* Polite: at most one request per ``--delay`` seconds per host, timeouts, retries with exponential
  backoff for timeouts / connection errors / 429 / 5xx, a size cap, ``--min-side``.
* Every URL tried ends in the species' journal (``crawl/<Genus_species>.jsonl``) and then in the
  manifest: kept (file, sha256, size, format, licence) or dropped with its reason (``http 404``,
  ``timeout after 3 tries``, ``not an image (text/html)``, ``too small (10x10, min side 64)``...).
  Decoding the whole image (truncated files) is left to ``normalize``.
* Resumable: files are written atomically and named after the URL, a URL already in the journal is
  never fetched again, and a finished species is marked done. With ``--downloader-threads 1`` a crawl
  killed midway and rerun gives exactly what an uninterrupted crawl gives (with more threads the
  surplus candidates beyond the target may be picked in another order).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from .common import (
    Journal,
    Manifest,
    add_common_arguments,
    atomic_write_bytes,
    image_id,
    read_csv,
    report,
    species_dir_name,
)
from .gbif import GBIF_API
from .http import BROWSER_USER_AGENT, RETRY_STATUS, mount_retries
from .licences import normalise_licence
from .sources import SOURCE_MODULES

CRAWLERS = tuple(SOURCE_MODULES)  # one module per source: data_prep/sources/
BING_URL = "https://www.bing.com/images/async?q={query}&first={first}"
DONE = "#done"  # journal key marking a species as finished
# What a candidate URL may carry besides itself (URL lists and GBIF: licence, photographer, observation).
META_KEYS = (
    "license",
    "license_raw",
    "origin",
    "source",
    "creator",
    "rights_holder",
    "occurrence_id",
    "observation_id",
)
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
MAX_BYTES = 25 * 1024 * 1024


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("crawl")
    g.add_argument("--source", choices=CRAWLERS, default="bing")
    g.add_argument("--url-list", type=Path, help="CSV with species,url[,license,origin] (for --source url-list)")
    g.add_argument("--bing-url", default=BING_URL, help="results-page URL template with {query} and {first}")
    g.add_argument("--min-side", type=int, default=64, help="drop images whose shorter side is below this (px)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds without data before a request fails")
    g.add_argument("--retries", type=int, default=2, help="extra tries after a timeout/connection error/5xx")
    g.add_argument("--backoff", type=float, default=1.0, help="first retry waits this long, then doubles")
    g.add_argument("--delay", type=float, default=1.0, help="minimum seconds between two requests to one host")
    g.add_argument(
        "--user-agent",
        default=BROWSER_USER_AGENT,
        help="User-Agent for search-engine pages and image hosts (default: a normal desktop browser)",
    )
    g.add_argument("--gbif-api", default=GBIF_API, help="GBIF API root (for --source gbif)")
    g.add_argument(
        "--gbif-research-grade", action="store_true", help="only iNaturalist research-grade observations (gbif)"
    )
    g.add_argument(
        "--gbif-licences",
        choices=("any", "open"),
        default="open",
        help="open: only CC0, CC BY, CC BY-NC photos (default); any: every licence, recorded per image (gbif)",
    )
    g.add_argument(
        "--contact", default="", help="e-mail or URL sent in the User-Agent to APIs (GBIF asks scripted users for one)"
    )
    g.add_argument("--crawl-workers", type=int, default=8, help="species crawled at the same time")
    g.add_argument("--downloader-threads", type=int, default=4, help="download threads per species")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


@dataclass(frozen=True)
class FetchSettings:
    min_side: int = 64
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 1.0
    max_bytes: int = MAX_BYTES


def url_host(url: str) -> str:
    """The website an image came from (``www.`` dropped): the default ``source`` of a crawled image."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


# ---------------------------------------------------------------------------------------------
# fetching one URL


class RateLimiter:
    """At most one request per ``interval`` seconds per host, shared by every thread of the crawl."""

    def __init__(self, interval: float):
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        if self.interval <= 0:
            return
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + self.interval
        if start > now:
            time.sleep(start - now)


def _read_limited(response, limit: int) -> bytes | None:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def inspect_image_bytes(data: bytes, content_type: str, min_side: int) -> dict:
    """Cheap check of downloaded bytes (header only): format and size, or the reason to drop."""
    from PIL import Image

    from mushroom_id.core.images import ALLOWED_FORMATS, MAX_PIXELS

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (w, h) = img.format, img.size
    except Exception:
        return {"status": "dropped", "reason": f"not an image ({content_type or 'no content type'})"}
    if fmt not in ALLOWED_FORMATS:
        return {"status": "dropped", "reason": f"unsupported format {fmt}"}
    if w * h > MAX_PIXELS:
        return {"status": "dropped", "reason": f"too many pixels ({w}x{h})"}
    if min(w, h) < min_side:
        return {"status": "dropped", "reason": f"too small ({w}x{h}, min side {min_side})"}
    return {"status": "ok", "reason": "", "width": w, "height": h, "format": fmt}


def fetch_image(session, url: str, settings: FetchSettings) -> tuple[dict, bytes | None]:
    """GET ``url`` (the session retries with backoff and honours Retry-After); returns (outcome, bytes or None)."""
    import requests

    tries = f"after {settings.retries + 1} tries"
    try:
        with session.get(url, timeout=settings.timeout, stream=True) as resp:
            if resp.status_code != 200:
                retried = resp.status_code in RETRY_STATUS and settings.retries
                return {
                    "status": "dropped",
                    "reason": f"http {resp.status_code}" + (f" {tries}" if retried else ""),
                }, None
            data = _read_limited(resp, settings.max_bytes)
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
    except requests.RequestException as e:
        kind = "timeout" if "timed out" in str(e).lower() else f"connection error ({type(e).__name__})"
        return {"status": "dropped", "reason": f"{kind} {tries}"}, None
    if data is None:
        return {"status": "dropped", "reason": f"too large (over {settings.max_bytes // 2**20} MB)"}, None
    if not data:
        return {"status": "dropped", "reason": "empty response"}, None
    outcome = inspect_image_bytes(data, content_type, settings.min_side)
    return outcome, data if outcome["status"] == "ok" else None


# ---------------------------------------------------------------------------------------------
# icrawler components


class SpeciesState:
    """What is known about one species' crawl: its journal (URL -> outcome) and its folder."""

    def __init__(self, work_dir: Path, species: str):
        self.work_dir = work_dir
        self.species = species
        self.raw_dir = work_dir / "raw" / species_dir_name(species)
        self.journal = Journal(work_dir / "crawl" / f"{species_dir_name(species)}.jsonl", key="url")
        self.records = self.journal.load()
        self.lock = threading.Lock()
        self.inflight: set[str] = set()

    def ok_count(self, exclude_query: str | None = None) -> int:
        return sum(
            1
            for u, r in self.records.items()
            if u != DONE and r["status"] == "ok" and (exclude_query is None or r["query"] != exclude_query)
        )

    def record(self, rec: dict) -> None:
        self.records[rec["url"]] = rec
        self.journal.append(rec)


def _import_icrawler():
    import icrawler
    from icrawler import utils as icrawler_utils

    return icrawler, icrawler_utils


def _components():
    """icrawler subclasses, built lazily so that importing this module stays cheap."""
    icrawler, icrawler_utils = _import_icrawler()
    from icrawler.builtin.bing import BingFeeder, BingParser
    from icrawler.builtin.google import GoogleFeeder, GoogleParser
    from icrawler.builtin.urllist import PseudoParser

    class PoliteSession(icrawler_utils.Session):
        limiter: RateLimiter = RateLimiter(0)

        def get(self, url, **kwargs):
            self.limiter.wait(url)
            return super().get(url, **kwargs)

    class FullBingParser(BingParser):
        """Every result of a Bing page, whatever the format: ``murl`` (the image) and ``purl`` (the page it is on).

        icrawler's parser keeps only URLs matching ``murl":"(.*?)\\.jpg`` (PNG, WebP and .jpeg results are
        lost, and URLs are cut at their first ".jpg"); this one reads the JSON of each result's ``m`` attribute.
        """

        def parse(self, response):
            import html as html_lib
            import json

            from bs4 import BeautifulSoup

            soup = BeautifulSoup(response.content.decode("utf-8", "ignore"), "lxml")
            for div in soup.find_all("div", class_="imgpt"):
                a = div.find("a", attrs={"m": True})
                if a is None:
                    continue
                try:
                    meta = json.loads(html_lib.unescape(a["m"]))
                except (ValueError, TypeError):
                    continue
                if isinstance(meta, dict) and meta.get("murl"):
                    yield {"file_url": meta["murl"], "page_url": meta.get("purl") or ""}

    class ConfigurableBingFeeder(BingFeeder):
        def __init__(self, thread_num, signal, session, url_template=BING_URL):
            super().__init__(thread_num, signal, session)
            self.url_template = url_template

        def feed(self, keyword, offset, max_num, filters=None):
            for first in range(offset, offset + max_num, 20):  # icrawler's paging of Bing's async endpoint
                self.out_queue.put(self.url_template.format(query=quote_plus(keyword), first=first))

    class RecordingDownloader(icrawler.ImageDownloader):
        """Fetches with our retries/limits, names files after the URL, journals every outcome."""

        def __init__(
            self,
            thread_num,
            signal,
            session,
            storage,
            state: SpeciesState,
            query: str,
            crawler: str,
            settings: FetchSettings,
            meta: dict | None = None,
        ):
            super().__init__(thread_num, signal, session, storage)
            self.state, self.query, self.crawler, self.settings = state, query, crawler, settings
            self.meta = meta or {}

        def process_meta(self, task):  # results-page extras (Bing's page URL) travel with the task
            return task

        def _full(self) -> bool:
            if self.max_num > 0 and self.fetched_num >= self.max_num:
                self.signal.set(reach_max_num=True)
            return bool(self.signal.get("reach_max_num"))

        def download(self, task, default_ext, timeout=5, max_retry=3, overwrite=False, **kwargs):
            url = task["file_url"]
            st = self.state
            with st.lock:
                prev = st.records.get(url)
                if prev is not None:
                    if prev["status"] == "ok" and prev["query"] == self.query:
                        self.fetched_num += 1  # resumed: it counts toward this query's budget again
                        self._full()
                    return False
                if url in st.inflight or self._full():
                    return False
                st.inflight.add(url)
            try:
                outcome, data = fetch_image(self.session, url, self.settings)
                with st.lock:
                    if self._full():
                        return False  # an uninterrupted crawl would not have kept it either
                    rec = {
                        "url": url,
                        "query": self.query,
                        "crawler": self.crawler,
                        **outcome,
                        **({"origin": task["page_url"]} if task.get("page_url") else {}),
                        **self.meta.get(url, {}),
                    }
                    if data is not None:
                        iid = image_id(st.species, url)
                        rel = Path("raw") / species_dir_name(st.species) / f"{iid}.{EXTENSIONS[outcome['format']]}"
                        atomic_write_bytes(st.work_dir / rel, data)
                        rec.update(file=rel.as_posix(), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
                        self.fetched_num += 1
                    st.record(rec)
                    self._full()
                    return data is not None
            finally:
                with st.lock:
                    st.inflight.discard(url)

        def worker_exec(
            self, max_num, default_ext="jpg", queue_timeout=0.2, req_timeout=5, max_idle_time=None, **kwargs
        ):
            # Unlike icrawler's, never give up while the parser may still produce tasks.
            self.max_num = max_num
            while not self.signal.get("reach_max_num"):
                try:
                    task = self.in_queue.get(timeout=queue_timeout)
                except queue.Empty:
                    if self.signal.get("parser_exited"):
                        break
                    continue
                try:
                    self.download(task, default_ext, req_timeout)
                except Exception:  # a bug in one task must not kill the thread silently
                    self.logger.exception("download of %s failed", task.get("file_url"))
                finally:
                    self.in_queue.task_done()

    class SpeciesCrawler(icrawler.Crawler):
        def __init__(self, limiter: RateLimiter, settings: FetchSettings, user_agent: str, *args, **kwargs):
            self._limiter, self._settings, self._user_agent = limiter, settings, user_agent
            super().__init__(*args, **kwargs)

        def set_session(self, headers=None):
            super().set_session(headers)
            session = PoliteSession(self.proxy_pool)
            session.limiter = self._limiter
            session.headers.update(self.session.headers)
            session.headers["User-Agent"] = self._user_agent
            mount_retries(session, self._settings.retries, self._settings.backoff)
            self.session = session

        def crawl(self, feeder_kwargs=None, parser_kwargs=None, downloader_kwargs=None):
            # icrawler's loop polls once a second; ours ends a query as soon as its threads are done.
            self.signal.reset()
            self.feeder.start(**(feeder_kwargs or {}))
            self.parser.start(**(parser_kwargs or {}))
            self.downloader.start(**(downloader_kwargs or {}))
            while True:
                if not self.feeder.is_alive():
                    self.signal.set(feeder_exited=True)
                if not self.parser.is_alive():
                    self.signal.set(parser_exited=True)
                if not self.downloader.is_alive():
                    break
                time.sleep(0.05)
            if self.parser.is_alive() or self.feeder.is_alive():
                self.signal.set(reach_max_num=True)  # tell the rest to stop; they are daemon threads
            self.downloader.clear_buffer(True)
            self.parser.clear_buffer()

    return {
        "SpeciesCrawler": SpeciesCrawler,
        "RecordingDownloader": RecordingDownloader,
        "feeders": {"bing": ConfigurableBingFeeder, "google": GoogleFeeder},
        "parsers": {"bing": FullBingParser, "google": GoogleParser, "url-list": PseudoParser, "gbif": PseudoParser},
    }


def _quiet_icrawler() -> None:
    for name in ("feeder", "parser", "downloader", "icrawler", "icrawler.crawler"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def crawl_species(
    work_dir: Path,
    species: str,
    jobs: list,
    target: int,
    source,
    settings: FetchSettings,
    limiter: RateLimiter,
    threads: int = 4,
    bing_url: str = BING_URL,
    user_agent: str = BROWSER_USER_AGENT,
) -> dict:
    """Crawl one species (resuming from its journal) through ``source``'s ``jobs`` (data_prep.sources);
    returns its counts."""
    from icrawler.feeder import UrlListFeeder

    state = SpeciesState(work_dir, species)
    done = state.records.get(DONE)
    if done is not None and done.get("target") == target:
        return {"species": species, "ok": state.ok_count(), "tried": len(state.records) - 1, "skipped": True}
    parts = _components()
    _quiet_icrawler()
    listed = source.feeder == "url-list"
    for job in jobs:
        query = job.query
        urls = list(dict.fromkeys(r["url"] for r in job.candidates))
        meta = {r["url"]: {k: r[k] for k in META_KEYS if r.get(k)} for r in job.candidates}
        budget = 0
        if target > 0:
            budget = target - state.ok_count(exclude_query=query)
            if budget <= 0:
                break
        feeder_cls = UrlListFeeder if listed else parts["feeders"][source.feeder]
        crawler = parts["SpeciesCrawler"](
            limiter,
            settings,
            user_agent,
            feeder_cls=feeder_cls,
            parser_cls=parts["parsers"][source.parser],
            downloader_cls=parts["RecordingDownloader"],
            downloader_threads=threads,
            log_level=logging.CRITICAL,
            storage={"root_dir": str(state.raw_dir)},
            extra_feeder_args={"url_template": bing_url} if source.feeder == "bing" else None,
            extra_downloader_args={
                "state": state,
                "query": query,
                "crawler": source.name,
                "settings": settings,
                "meta": meta,
            },
        )
        if listed:
            feeder_kwargs = {"url_list": urls}
        else:
            pages = 1000 if budget == 0 else min(1000, max(2 * budget, 40))  # search engines stop at ~1000
            feeder_kwargs = {"keyword": job.keyword, "offset": 0, "max_num": pages}
        crawler.crawl(
            feeder_kwargs=feeder_kwargs,
            parser_kwargs={"queue_timeout": 0.2, "req_timeout": settings.timeout, "max_retry": settings.retries + 1},
            downloader_kwargs={"max_num": budget, "req_timeout": settings.timeout, "queue_timeout": 0.2},
        )
    with state.lock:
        state.record({"url": DONE, "status": "done", "query": "", "target": target, "ok": state.ok_count()})
    state.journal.close()
    return {"species": species, "ok": state.ok_count(), "tried": len(state.records) - 1, "skipped": False}


# ---------------------------------------------------------------------------------------------
# manifest


def manifest_rows(work_dir: Path, species_list: list[str], extra_rows: list[dict]) -> list[dict]:
    rows = list(extra_rows)
    for species in species_list:
        journal = Journal(work_dir / "crawl" / f"{species_dir_name(species)}.jsonl", key="url")
        for url, rec in journal.load().items():
            if url == DONE:
                continue
            ok = rec["status"] == "ok"
            rows.append(
                {
                    "image_id": image_id(species, url),
                    "species": species,
                    "query": rec.get("query", ""),
                    "crawler": rec.get("crawler", ""),
                    "source": rec.get("source") or url_host(url),
                    "source_url": url,
                    "license": normalise_licence(rec.get("license")),
                    "license_raw": rec.get("license_raw") or rec.get("license") or "",
                    "origin": rec.get("origin", ""),
                    **{k: rec.get(k, "") for k in ("creator", "rights_holder", "occurrence_id", "observation_id")},
                    "raw_path": rec.get("file", "") if ok else "",
                    "raw_sha256": rec.get("sha256", ""),
                    "raw_width": rec.get("width", ""),
                    "raw_height": rec.get("height", ""),
                    "raw_format": rec.get("format", ""),
                    "status": "ok" if ok else "dropped",
                    "drop_stage": "" if ok else "crawl",
                    "drop_reason": "" if ok else rec.get("reason", ""),
                }
            )
    return rows


def local_rows(work_dir: Path) -> list[dict]:
    """The rows ``ingest`` added to this work folder (crawl rewrites the manifest from its journals)."""
    from .ingest import ingested_rows

    return ingested_rows(work_dir)


def read_url_list(path: Path, catalog, selected: set[str]) -> tuple[dict[str, list[dict]], list[dict]]:
    """URL-list rows grouped by accepted species, plus manifest rows for the ones that cannot be used."""
    by_species: dict[str, list[dict]] = {}
    dropped = []
    seen = set()
    for row in read_csv(path):
        name, url = (row.get("species") or "").strip(), (row.get("url") or "").strip()
        if not url:
            continue
        accepted = catalog.resolve(name)
        if accepted is None or accepted not in selected:
            if (name, url) in seen:
                continue
            seen.add((name, url))
            reason = f"not a catalog species: {name}" if accepted is None else f"species not selected: {accepted}"
            dropped.append(
                {
                    "image_id": image_id(name, url),
                    "species": accepted or name,
                    "query": f"url-list:{path.name}",
                    "crawler": "url-list",
                    "source": row.get("source") or url_host(url),
                    "source_url": url,
                    "license": normalise_licence(row.get("license")),
                    "license_raw": row.get("license") or "",
                    "origin": row.get("origin", ""),
                    "status": "dropped",
                    "drop_stage": "crawl",
                    "drop_reason": reason,
                }
            )
            continue
        by_species.setdefault(accepted, []).append(row)
    return by_species, dropped


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .sources import get_source
    from .species import read_species

    work_dir: Path = args.work_dir
    species_rows = read_species(work_dir)
    settings = FetchSettings(min_side=args.min_side, timeout=args.timeout, retries=args.retries, backoff=args.backoff)
    limiter = RateLimiter(args.delay)
    source = get_source(args.source)
    species_rows, extra = source.prepare(args, species_rows, limiter)
    # photos taken in by `ingest` live in the same manifest: keep them (their later columns start clean)
    extra += local_rows(work_dir)

    def crawl_one(row: dict) -> dict:
        jobs, info = source.jobs(row, args)
        result = crawl_species(
            work_dir,
            row["species"],
            jobs,
            int(row["target"]),
            source,
            settings,
            limiter,
            args.downloader_threads,
            args.bing_url,
            args.user_agent,
        )
        return {**result, **info}

    results = []
    t0 = time.perf_counter()
    with (
        ThreadPoolExecutor(max(1, args.crawl_workers)) as pool,
        tqdm(total=len(species_rows), desc="crawl", unit="species", disable=None) as bar,
    ):
        futures = [pool.submit(crawl_one, r) for r in species_rows]
        n_ok = 0
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            n_ok += res["ok"]
            bar.set_postfix(images=n_ok)
            bar.update()
    seconds = time.perf_counter() - t0
    rows = manifest_rows(work_dir, sorted(r["species"] for r in species_rows), extra)
    Manifest(work_dir).write(rows)
    from collections import Counter

    from .common import reason_kind

    reasons = Counter(reason_kind(r["drop_reason"]) for r in rows if r["status"] == "dropped")
    kept = sum(r["status"] == "ok" for r in rows)
    summary = {
        "source": args.source,
        "species": len(species_rows),
        "species_resumed_as_done": sum(r["skipped"] for r in results),
        "species_with_no_image": sum(r["ok"] == 0 for r in results),
        "urls_tried": len(rows),
        "images_kept": kept,
        "dropped": dict(sorted(reasons.items())),
        "licences_kept": dict(Counter(r["license"] for r in rows if r["status"] == "ok").most_common()),
        "seconds": round(seconds, 1),
    }
    if args.source == "gbif":
        summary["gbif_photos_listed"] = sum(r.get("listed", 0) for r in results)
        summary["gbif_species_without_photos"] = {r["species"]: r["reason"] for r in results if r.get("reason")}
    return report(work_dir, "crawl", summary)
