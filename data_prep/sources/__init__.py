"""Crawl sources: one small interface, one module per source.

A source answers two questions, and ``crawl`` does the rest (fetching, journals, retries, resuming):

* ``prepare(args, species_rows, limiter)``: which species it can crawl, and manifest rows for what it
  cannot use (a URL list's rows of unknown species); here it also opens what it needs (an API session
  sharing the crawl's per-host rate limiter).
* ``jobs(species_row, args)``: the species' jobs, in order, each either a search-engine ``keyword``
  (``bing``, ``google``: icrawler feeds result pages through the source's parser) or a list of
  ``candidates`` known up front (``url-list``, ``gbif``: URL plus licence, creator, observation...),
  and extra summary fields (``gbif``: photos listed, why none).

Adding a source is adding a module here with a ``SOURCE`` object and its name in :data:`SOURCE_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Job:
    """One query of one species. ``query`` is what each image records (``"Genus species"``, ``gbif``...)."""

    query: str
    keyword: str | None = None  # search engines: the text sent
    candidates: list[dict] = field(default_factory=list)  # listed sources: {"url", "license", "creator", ...}


class Source(Protocol):
    name: str  # the --source value, recorded as each image's ``crawler``
    feeder: str  # icrawler feeder: "bing" / "google" (result pages) or "url-list" (candidates)
    parser: str  # icrawler parser of the same names

    def prepare(self, args: argparse.Namespace, species_rows: list[dict], limiter) -> tuple[list[dict], list[dict]]: ...

    def jobs(self, species_row: dict, args: argparse.Namespace) -> tuple[list[Job], dict]: ...


SOURCE_MODULES = {"bing": ".bing", "google": ".google", "url-list": ".url_list", "gbif": ".gbif"}


def get_source(name: str) -> Source:
    if name not in SOURCE_MODULES:
        raise SystemExit(f"unknown crawl source {name!r}: one of {', '.join(SOURCE_MODULES)}")
    return importlib.import_module(SOURCE_MODULES[name], __package__).SOURCE


class SearchEngine:
    """A source that searches each of the species' names (accepted name first) until the target is reached."""

    name = feeder = parser = ""

    def prepare(self, args, species_rows, limiter):
        return species_rows, []

    def jobs(self, species_row, args):
        from ..species import QUERY_SEP

        return [Job(query=f'"{q}"', keyword=f'"{q}"') for q in species_row["queries"].split(QUERY_SEP)], {}
