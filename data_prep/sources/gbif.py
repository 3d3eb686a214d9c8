"""``--source gbif``: licensed photos listed by GBIF's API (``data_prep.gbif``), with photographer and page."""

from __future__ import annotations

from . import Job


class Gbif:
    name = "gbif"
    feeder = parser = "url-list"

    def prepare(self, args, species_rows, limiter):
        from ..http import api_session

        self.session = api_session(args.contact, retries=max(args.retries, 4), backoff=args.backoff, limiter=limiter)
        return species_rows, []

    def jobs(self, species_row, args):
        from ..gbif import list_species

        candidates, reason = list_species(
            self.session,
            args.gbif_api.rstrip("/"),
            species_row["species"],
            int(species_row["target"]),
            research_grade=args.gbif_research_grade,
            open_only=args.gbif_licences == "open",
            cache_dir=args.work_dir / "crawl",
        )
        return [Job(query="gbif", candidates=candidates)], {"listed": len(candidates), "reason": reason}


SOURCE = Gbif()
