"""Species stage: catalog default (all names as queries) and the original's popularity method."""

from __future__ import annotations

import csv
import json

from data_prep.__main__ import main
from data_prep.common import read_csv
from mushroom_id.core.catalog import default_catalog


def test_default_is_the_catalog_with_all_names_as_queries(tmp_path):
    assert main(["species", "--work-dir", str(tmp_path), "--per-species", "100", "--toxic-factor", "1.5"]) == 0
    rows = {r["species"]: r for r in read_csv(tmp_path / "species.csv")}
    catalog = default_catalog()
    assert sorted(rows) == catalog.names
    badia = rows["Imleria badia"]["queries"].split("; ")
    assert badia[0] == "Imleria badia" and "Boletus badius" in badia
    for name, row in rows.items():
        sp = catalog.get(name)
        assert int(row["target"]) == (150 if sp.dangerous else 100)
        # every query resolves back to the species it is filed under
        assert all(catalog.resolve(q) == name for q in row["queries"].split("; "))


def test_original_popularity_method_and_what_it_misses(tmp_path, shared_catalog):
    table = shared_catalog / "species_search_hits.csv"
    assert main(["species", "--work-dir", str(tmp_path), "--candidates", str(table)]) == 0
    summary = json.loads((tmp_path / "summaries" / "species.json").read_text())
    with open(table, newline="") as f:
        hits = {r["names"]: float(r["Number_Hits_Google"]) for r in csv.DictReader(f) if " var." not in r["names"]}
    assert summary["kept_by_threshold"] == sum(h > 20000 for h in hits.values()) == 1071
    assert hits["Amanita muscaria"] < 20000
    assert {"Amanita muscaria", "Boletus edulis"} <= set(summary["catalog_species_missed"])
    catalog = default_catalog()
    twice = summary["kept_twice_under_two_names"]
    assert twice, "the candidates hold synonym pairs above the threshold"
    for accepted, names in twice.items():
        assert len(set(names)) >= 2 and {catalog.resolve(n) for n in names} == {accepted}
    selected = [r["species"] for r in read_csv(tmp_path / "species.csv")]
    assert len(selected) == len(set(selected)) == summary["species"]  # each species once, under its accepted name
    assert all(
        hits.get(n, 0) > 20000
        or any(hits.get(x, 0) > 20000 for x in catalog.get(n).synonyms)
        or catalog.get(n).name in {catalog.resolve(k) for k, v in hits.items() if v > 20000}
        for n in selected
    )
