"""A local stand-in for GBIF's API (species match, occurrence search) and the image hosts it points at.

Answers in the recorded format of ``api.gbif.org/v1`` (fields the crawl reads, plus a few it ignores),
pages like the real API (``limit`` capped at 300, ``offset``, ``endOfRecords``, ``count``), filters by
``taxonKey``, ``mediaType``, ``datasetKey`` and ``license`` (repeatable), and serves real photos read in
place. Its first occurrence-search request is answered ``429`` with ``Retry-After: 1`` (the crawl must
wait and retry). ``requests`` lists every path asked.

    with FakeGbif(photos_dir, occurrences) as gbif:  # occurrences: see occurrences_from_shared()
        gbif.api  -> "http://127.0.0.1:<port>/v1"
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.stand_ins.local_server import LocalServer

INAT = "50c9509d-22c7-4a22-a47d-8c48425ef4a7"
OTHER_DATASET = "7f8d1a2e-0000-4000-8000-00000000beef"
LICENCES = (  # (media licence as publishers write it, the occurrence's GBIF enum)
    ("http://creativecommons.org/licenses/by-nc/4.0/", "CC_BY_NC_4_0"),
    ("http://creativecommons.org/publicdomain/zero/1.0/", "CC0_1_0"),
    ("http://creativecommons.org/licenses/by/4.0/", "CC_BY_4_0"),
    ("All rights reserved", "CC_BY_NC_4_0"),  # occurrence open, this photo not: filtered per photo
    ("http://creativecommons.org/licenses/by-nc-nd/4.0/", "CC_BY_NC_4_0"),
)


def occurrences_from_shared(photo_manifest: list[dict], species: list[str], per_occurrence: int = 2) -> list[dict]:
    """GBIF-format occurrences over the shared photos of ``species``: ``per_occurrence`` photos each
    (one observation, several photos), licences cycling through :data:`LICENCES`, every third one from
    another dataset. ``media[].identifier`` is a path ("photos/<Genus_species>/<file>"), made absolute
    by the server."""
    out = []
    n = 0
    for sp_index, name in enumerate(species):
        rows = [r for r in photo_manifest if r["species"] == name]
        for start in range(0, len(rows), per_occurrence):
            n += 1
            key = 5_000_000_000 + n
            obs = 300_000_000 + n
            media_licence, occ_licence = LICENCES[n % len(LICENCES)]
            inat = n % 3 != 0
            media = [
                {
                    "type": "StillImage",
                    "format": "image/jpeg",
                    "identifier": "photos/" + r["path"].split("/", 1)[1],
                    "references": f"https://www.inaturalist.org/photos/{900_000 + n * 10 + i}" if inat else "",
                    "created": "2024-09-14T10:21:00",
                    "creator": f"Photographer {n % 7}",
                    "publisher": "iNaturalist" if inat else "Other herbarium",
                    "license": media_licence,
                    "rightsHolder": f"Photographer {n % 7}",
                }
                for i, r in enumerate(rows[start : start + per_occurrence])
            ]
            out.append(
                {
                    "key": key,
                    "datasetKey": INAT if inat else OTHER_DATASET,
                    "datasetName": "iNaturalist research-grade observations" if inat else "Other herbarium",
                    "publishingOrgKey": "28eb1a3f-1c15-4a95-931a-4af90ecb574d",
                    "basisOfRecord": "HUMAN_OBSERVATION",
                    "occurrenceID": f"https://www.inaturalist.org/observations/{obs}" if inat else f"urn:herb:{key}",
                    "references": f"https://www.inaturalist.org/observations/{obs}" if inat else "",
                    "taxonKey": 1000 + sp_index,
                    "speciesKey": 1000 + sp_index,
                    "scientificName": name,
                    "license": f"http://creativecommons.org/licenses/{occ_licence}",
                    "licenseEnum": occ_licence,
                    "recordedBy": f"Photographer {n % 7}",
                    "media": media,
                }
            )
    return out


class FakeGbif(LocalServer):
    def __init__(self, photos_dir: str | Path, occurrences: list[dict], rate_limit_first: bool = True):
        self.photos_dir = Path(photos_dir).resolve()
        self.occurrences = occurrences
        self.names = {o["scientificName"]: o["taxonKey"] for o in occurrences}
        self.requests: list[str] = []
        self.user_agents: set[str] = set()
        self._rate_limit = rate_limit_first
        self._lock = threading.Lock()
        self.base = ""

    @property
    def api(self) -> str:
        return self.base + "/v1"

    def start(self) -> FakeGbif:
        gbif = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with gbif._lock:
                    gbif.requests.append(self.path)
                    gbif.user_agents.add(self.headers.get("User-Agent", ""))
                status, ctype, body, headers = gbif.respond(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.base = self.serve(Handler)
        return self

    def _json(self, obj, status: int = 200, headers: dict | None = None):
        return status, "application/json", json.dumps(obj).encode(), headers or {}

    def _absolute(self, occurrence: dict) -> dict:
        media = [{**m, "identifier": f"{self.base}/{m['identifier']}"} for m in occurrence["media"]]
        return {**occurrence, "media": media}

    def respond(self, raw: str):
        parts = urlsplit(raw)
        qs = parse_qs(parts.query)
        if parts.path == "/v1/species/match":
            name = " ".join(qs.get("name", [""])[0].split())
            if name in self.names:
                key = self.names[name]
                return self._json(
                    {
                        "usageKey": key,
                        "scientificName": name,
                        "canonicalName": name,
                        "rank": "SPECIES",
                        "status": "ACCEPTED",
                        "confidence": 99,
                        "matchType": "EXACT",
                        "kingdom": "Fungi",
                        "speciesKey": key,
                    }
                )
            return self._json({"confidence": 100, "matchType": "NONE", "synonym": False})
        if parts.path == "/v1/occurrence/search":
            with self._lock:
                if self._rate_limit:
                    self._rate_limit = False
                    return self._json({"error": "too many requests"}, 429, {"Retry-After": "1"})
            limit = int(qs.get("limit", ["20"])[0])
            offset = int(qs.get("offset", ["0"])[0])
            if limit > 300 or offset + limit > 100_000:
                return self._json({"error": "limit above 300 or offset beyond 100,000"}, 400)
            hits = [
                o
                for o in self.occurrences
                if str(o["taxonKey"]) in qs.get("taxonKey", [str(o["taxonKey"])])
                and ("datasetKey" not in qs or o["datasetKey"] in qs["datasetKey"])
                and ("license" not in qs or o["licenseEnum"] in qs["license"])
                and (qs.get("mediaType") != ["StillImage"] or o["media"])
            ]
            page = hits[offset : offset + limit]
            return self._json(
                {
                    "offset": offset,
                    "limit": limit,
                    "endOfRecords": offset + limit >= len(hits),
                    "count": len(hits),
                    "results": [self._absolute(o) for o in page],
                    "facets": [],
                }
            )
        kind, _, rel = parts.path.lstrip("/").partition("/")
        if kind == "photos":
            path = (self.photos_dir / unquote(rel)).resolve()
            if self.photos_dir in path.parents and path.is_file():
                return 200, "image/jpeg", path.read_bytes(), {}
        return 404, "application/json", b'{"error": "not found"}', {}
