"""``--source google``: best effort (icrawler's Google parser breaks whenever Google changes its pages)."""

from __future__ import annotations

from . import SearchEngine


class Google(SearchEngine):
    name = feeder = parser = "google"

    def prepare(self, args, species_rows, limiter):
        print(
            "note: --source google is best effort: icrawler's Google parser breaks whenever Google changes its "
            "pages (zero results then mean that, not an empty web); prefer gbif or bing",
            flush=True,
        )
        return species_rows, []


SOURCE = Google()
