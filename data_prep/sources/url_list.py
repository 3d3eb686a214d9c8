"""``--source url-list --url-list CSV``: ``species,url[,license,origin,creator,rights_holder,observation_id]``
(exports from GBIF / iNaturalist / Mushroom Observer carry licences and credits)."""

from __future__ import annotations

from . import Job


class UrlList:
    name = "url-list"
    feeder = parser = "url-list"

    def __init__(self):
        self.by_species: dict[str, list[dict]] = {}

    def prepare(self, args, species_rows, limiter):
        from mushroom_id.core.catalog import default_catalog

        from ..crawl import read_url_list

        if not args.url_list:
            raise SystemExit("--source url-list needs --url-list CSV")
        selected = {r["species"] for r in species_rows}
        self.by_species, dropped = read_url_list(args.url_list, default_catalog(), selected)
        self.list_name = args.url_list.name
        return [r for r in species_rows if r["species"] in self.by_species], dropped

    def jobs(self, species_row, args):
        return [Job(query=f"url-list:{self.list_name}", candidates=self.by_species.get(species_row["species"], []))], {}


SOURCE = UrlList()
