"""The ``gbif`` crawl source: licensed photos with their photographer and observation page.

For each species: the GBIF species-match API gives its taxon key (``/species/match?name=``; a synonym
resolves to its accepted taxon), then ``/occurrence/search?taxonKey=&mediaType=StillImage`` is paged
(``limit`` at most 300 per page, ``offset + limit`` at most 100,000: the API's paging limits) until the
species has enough candidate images. ``--gbif-research-grade`` restricts the search to iNaturalist's
research-grade dataset, ``--gbif-licences open`` to open licences (CC0, CC BY, CC BY-NC; the filter is
applied to the occurrence by the API and again to each photo here, because a media licence can differ).

Each photo (an entry of ``media[]`` with ``type == StillImage``) becomes one candidate: ``identifier``
(the image URL), ``license`` (normalised by :mod:`data_prep.licences`: ``CC-BY-NC-4.0``, ``CC0-1.0``...;
the raw value is kept as ``license_raw``), ``creator`` and ``rightsHolder``, the occurrence's
``references`` (the observation page, stored as ``origin``; GBIF's occurrence page when the publisher
gives none), the GBIF occurrence id and the observation id (iNaturalist's, when the occurrence is one).
The listing of each species is cached in ``crawl/<Genus_species>.gbif.json`` so a rerun asks nothing.

Polite: a contact in the User-Agent (``--contact``), one request per ``--delay`` seconds to the API,
retries with exponential backoff that honour ``Retry-After`` (urllib3 ``Retry``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .common import atomic_write_text, species_dir_name
from .licences import is_open_licence, is_open_or_noncommercial, normalise_licence  # noqa: F401 (re-exported)

GBIF_API = "https://api.gbif.org/v1"
INATURALIST_DATASET = "50c9509d-22c7-4a22-a47d-8c48425ef4a7"  # iNaturalist research-grade observations
PAGE_LIMIT = 300  # the API's maximum page size
OFFSET_LIMIT = 100_000  # occurrence search refuses offset + limit beyond this
OPEN_API_LICENCES = ("CC0_1_0", "CC_BY_4_0", "CC_BY_NC_4_0")  # GBIF's licence enumeration

_INAT_OBS = re.compile(r"inaturalist\.org/observations/(\d+)")


def taxon_key(session, api: str, name: str) -> tuple[str, str]:
    """(GBIF taxon key of the accepted species, why not) for a scientific name."""
    resp = session.get(f"{api}/species/match", params={"name": name, "rank": "SPECIES", "kingdom": "Fungi"})
    if resp.status_code != 200:
        return "", f"species match: http {resp.status_code}"
    m = resp.json()
    if m.get("matchType", "NONE") == "NONE" or not m.get("usageKey"):
        return "", f"species match: no GBIF taxon for {name}"
    if m.get("rank") not in (None, "SPECIES", "SUBSPECIES", "VARIETY", "FORM"):
        return "", f"species match: {name} matched a {m.get('rank', '').lower()} only"
    return str(m.get("acceptedUsageKey") or m.get("speciesKey") or m["usageKey"]), ""


def media_records(occurrence: dict, open_only: bool) -> list[dict]:
    """The still images of one occurrence as candidate rows (url + provenance)."""
    key = str(occurrence.get("key", ""))
    refs = occurrence.get("references") or ""
    inat = _INAT_OBS.search(" ".join(str(occurrence.get(k) or "") for k in ("references", "occurrenceID")))
    observation = f"inat:{inat.group(1)}" if inat else f"gbif:{key}"
    source = occurrence.get("datasetName") or f"gbif-dataset:{occurrence.get('datasetKey', '')[:8]}"
    out = []
    for media in occurrence.get("media") or []:
        url = media.get("identifier") or ""
        if media.get("type") != "StillImage" or not url:
            continue
        raw = media.get("license") or occurrence.get("license") or ""
        licence = normalise_licence(raw)
        if open_only and not is_open_or_noncommercial(licence):
            continue
        out.append(
            {
                "url": url,
                "license": licence,
                "license_raw": raw,
                "creator": media.get("creator") or occurrence.get("recordedBy") or "",
                "rights_holder": media.get("rightsHolder") or occurrence.get("rightsHolder") or "",
                "origin": refs or f"https://www.gbif.org/occurrence/{key}",  # the observation's page
                "occurrence_id": f"gbif:{key}",
                "observation_id": observation,
                "source": source,
            }
        )
    return out


def list_species(
    session,
    api: str,
    species: str,
    wanted: int,
    research_grade: bool = False,
    open_only: bool = False,
    cache_dir: Path | None = None,
) -> tuple[list[dict], str]:
    """Candidate photos of one species (at least ``wanted`` when GBIF has them; 0: every one), cached.

    Returns (candidates, reason when there are none).
    """
    cache = None
    if cache_dir is not None:
        cache = cache_dir / f"{species_dir_name(species)}.gbif.json"
        if cache.is_file():
            saved = json.loads(cache.read_text())
            if saved.get("query") == [wanted, research_grade, open_only]:
                return saved["candidates"], saved.get("reason", "")
    key, reason = taxon_key(session, api, species)
    candidates: list[dict] = []
    if key:
        params: dict = {"taxonKey": key, "mediaType": "StillImage", "limit": PAGE_LIMIT}
        if research_grade:
            params["datasetKey"] = INATURALIST_DATASET
        if open_only:
            params["license"] = list(OPEN_API_LICENCES)
        offset = 0
        while offset + PAGE_LIMIT <= OFFSET_LIMIT:
            resp = session.get(f"{api}/occurrence/search", params={**params, "offset": offset})
            if resp.status_code != 200:
                reason = f"occurrence search: http {resp.status_code}"
                break
            page = resp.json()
            results = page.get("results") or []
            for occurrence in results:
                candidates += media_records(occurrence, open_only)
            offset += len(results)
            if page.get("endOfRecords", True) or not results or (wanted and len(candidates) >= 2 * wanted):
                break  # twice the target: room for dead links, duplicates and small images
        if not candidates and not reason:
            reason = "no GBIF photo" + (" under an open licence" if open_only else "")
    if cache is not None:
        atomic_write_text(
            cache,
            json.dumps({"query": [wanted, research_grade, open_only], "candidates": candidates, "reason": reason}),
        )
    return candidates, reason
