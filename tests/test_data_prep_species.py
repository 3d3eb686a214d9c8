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
    argv = ["species", "--work-dir", str(tmp_path), "--candidates", str(table), "--hits-as-original"]
    assert main(argv) == 0
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
    below = summary["kept_as_labels_below_the_cut"]
    assert below == ["Rhodocybe gemina"]  # the original kept it at 11,100 hits
    assert all(
        hits.get(n, 0) > 20000
        or any(hits.get(x, 0) > 20000 for x in catalog.get(n).synonyms)
        or catalog.get(n).name in {catalog.resolve(k) for k, v in hits.items() if v > 20000}
        or n in {catalog.resolve(b) for b in below}
        for n in selected
    )


def test_the_popularity_step_keeps_every_original_label(tmp_path, shared_catalog):
    """Every one of the 860 species the original's labels resolve to comes out of the step, Clitopilus
    geminus included (below the cut, kept because the original kept it); without the labels it is lost."""
    table = shared_catalog / "species_search_hits.csv"
    catalog = default_catalog()
    with open(shared_catalog / "labels_933.csv", newline="") as f:
        label_species = {catalog.resolve(r["Names"]) for r in csv.DictReader(f)} - {None}
    assert len(label_species) == 860
    assert main(["species", "--work-dir", str(tmp_path), "--candidates", str(table)]) == 0
    selected = {r["species"] for r in read_csv(tmp_path / "species.csv")}
    assert label_species <= selected and "Clitopilus geminus" in selected
    off = tmp_path / "off"
    assert main(["species", "--work-dir", str(off), "--candidates", str(table), "--keep-labels", ""]) == 0
    assert label_species - {r["species"] for r in read_csv(off / "species.csv")} == {"Clitopilus geminus"}


def test_hit_counts_are_parsed_with_thousands_separators(tmp_path, shared_catalog):
    from data_prep.species import parse_hits

    assert parse_hits("Aproximadamente 2.050.000 resultados (0,45 segundos) ") == 2_050_000
    assert parse_hits("About 1,230 results (0.31 seconds)") == 1230
    assert parse_hits("99 resultados") == 99 and parse_hits("no hits") is None
    table = shared_catalog / "species_search_hits.csv"
    assert main(["species", "--work-dir", str(tmp_path), "--candidates", str(table)]) == 0
    summary = json.loads((tmp_path / "summaries" / "species.json").read_text())
    assert summary["names_misparsed_by_the_numeric_column"] == 29
    assert summary["kept_by_threshold"] == 1081  # 10 popular names were under the cut
    brought_in = set(summary["species_brought_in_by_parsing"])
    assert {"Amanita muscaria", "Boletus edulis"} <= brought_in
    assert not brought_in & set(summary["catalog_species_missed"]) and not summary["species_left_out_by_parsing"]
    selected = {r["species"] for r in read_csv(tmp_path / "species.csv")}
    assert {"Amanita muscaria", "Boletus edulis"} <= selected
    # every original label still resolves to a catalog species, as before
    catalog = default_catalog()
    with open(shared_catalog / "labels_933.csv", newline="") as f:
        labels = [r["Names"] for r in csv.DictReader(f)]
    assert sum(catalog.resolve(n) is not None for n in labels) == 929  # the 3 non-species and one more, as before
