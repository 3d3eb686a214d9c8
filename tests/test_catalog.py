"""The species catalog: facts checked against the sources, the loader API, and that the committed table
is exactly what the builder makes from ../shared."""

from __future__ import annotations

import csv

import pytest

from data_prep import catalog as builder
from mushroom_id.core.catalog import (
    CSV_COLUMNS,
    DANGEROUS,
    EDIBILITY_LEVELS,
    Catalog,
    default_catalog,
    is_dangerous,
    merge_statuses,
)
from mushroom_id.core.paths import CATALOG_CSV


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture(scope="module")
def labels(shared_catalog) -> list[str]:
    return builder.read_labels(shared_catalog)


@pytest.fixture(scope="module")
def synonym_rows() -> list[dict]:
    return builder.read_synonyms()


# --------------------------------------------------------------------------- merge_statuses


def test_merge_deadly_beats_edible():
    assert merge_statuses(["edible", "deadly", "choice"]) == "deadly"
    assert merge_statuses(["choice", "poisonous"]) == "poisonous"


def test_merge_unknown_never_beats_a_known_status():
    assert merge_statuses(["unknown", "edible"]) == "edible"
    assert merge_statuses(["choice", "unknown", ""]) == "choice"
    assert merge_statuses(["unknown", "inedible", "unknown"]) == "inedible"


def test_merge_nothing_known_is_unknown():
    assert merge_statuses([]) == "unknown"
    assert merge_statuses(["unknown", "", None]) == "unknown"


def test_merge_follows_danger_order():
    for i, more in enumerate(EDIBILITY_LEVELS):
        for less in EDIBILITY_LEVELS[i + 1 :]:
            if "unknown" not in (more, less):
                assert merge_statuses([less, more]) == more


def test_merge_rejects_unmapped_status():
    with pytest.raises(ValueError, match="allergenic"):
        merge_statuses(["edible", "allergenic"])


def test_is_dangerous():
    assert DANGEROUS == {"deadly", "poisonous", "psychoactive"}
    assert is_dangerous("deadly") and is_dangerous("Poisonous") and is_dangerous("psychoactive")
    assert not any(is_dangerous(s) for s in ("inedible", "unknown", "edible", "choice", ""))


# --------------------------------------------------------------------------- facts


@pytest.mark.parametrize("name", ["Amanita phalloides", "Amanita virosa", "Amanita bisporigera", "Galerina marginata"])
def test_deadly_species(catalog, name):
    assert catalog.edibility(name) == "deadly"
    assert catalog.get(name).dangerous


@pytest.mark.parametrize("name", ["Cantharellus cibarius", "Boletus edulis"])
def test_edible_species(catalog, name):
    assert catalog.edibility(name) in ("edible", "choice")


def test_fly_agaric_is_dangerous(catalog):
    sp = catalog.get("Amanita muscaria")
    assert sp.edibility not in ("edible", "choice")
    assert is_dangerous(sp.edibility)


def test_false_chanterelle_is_a_lookalike_of_the_chanterelle(catalog):
    assert "Hygrophoropsis aurantiaca" in catalog.get("Cantharellus cibarius").lookalikes
    assert "Cantharellus cibarius" in catalog.get("Hygrophoropsis aurantiaca").lookalikes
    assert "Hygrophoropsis aurantiaca" in [s.name for s in catalog.lookalikes("Cantharellus cibarius")]


def test_same_epithet_in_another_genus_stays_distinct(catalog):
    morel, false_morel = catalog.get("Morchella esculenta"), catalog.get("Gyromitra esculenta")
    assert morel.name != false_morel.name
    assert false_morel.edibility == "deadly"
    assert morel.edibility in ("edible", "choice")
    assert "Gyromitra esculenta" in morel.lookalikes


def test_restored_species_are_present(catalog):
    for name in builder.RESTORED:
        sp = catalog.get(name)
        # the original had the yellow stainer only under a misspelling (Agaricus xanthoderma)
        assert sp.name == name and sp.in_original == (name == "Agaricus xanthodermus")
    assert catalog.edibility("Amanita ocreata") == "deadly"
    assert catalog.edibility("Agaricus xanthodermus") == "poisonous"


def test_lichens_and_rusts_are_not_added(catalog):
    assert "Flavoparmelia caperata" not in catalog  # a lichen in taxonomy_inat1000
    assert "Puccinia coronata" not in catalog  # a rust
    assert "Gymnosporangium juniperi-virginianae" in catalog  # a rust, but an original label


# --------------------------------------------------------------------------- names


def test_synonyms_and_misspellings_resolve(catalog):
    assert catalog.resolve("Boletus badius") == "Imleria badia"
    assert catalog.resolve("Higrocybe pratensis") == "Cuphophyllus pratensis"
    assert catalog.resolve("Camarophyllus pratensis") == "Cuphophyllus pratensis"
    assert catalog.resolve("Macrolepiota rhacodes") == "Chlorophyllum rhacodes"
    assert catalog.resolve("Ustulina deusta") == "Kretzschmaria deusta"
    assert catalog.resolve("Polyporus squamosus") == "Cerioporus squamosus"
    assert catalog.resolve("Agaricus xanthoderma") == "Agaricus xanthodermus"
    assert catalog.get("Boletus badius").name == "Imleria badia"
    assert catalog.edibility("Entoloma lividum") == catalog.edibility("Entoloma sinuatum") == "poisonous"


def test_resolve_is_tolerant(catalog):
    for raw in ("boletus badius", "BOLETUS BADIUS", "Boletus_badius", "  Boletus   badius ", "Imleria_badia"):
        assert catalog.resolve(raw) == "Imleria badia"
        assert raw in catalog


def test_unknown_names(catalog):
    assert catalog.resolve("Notafungus atall") is None
    assert "Notafungus atall" not in catalog
    assert catalog.edibility("Notafungus atall") == "unknown"
    with pytest.raises(KeyError, match="not in the species catalog"):
        catalog.get("Notafungus atall")


def test_every_original_label_resolves(catalog, labels, synonym_rows):
    assert len(labels) == 933
    non_species = {r["name"] for r in synonym_rows if r["kind"] == "non_species"}
    assert non_species == {"Clavariaceae", "Clavulinaceae", "Pleurotus", "Panaeolus sp"}
    unresolved = {label for label in labels if catalog.resolve(label) is None}
    assert unresolved == non_species
    resolved = {catalog.resolve(label) for label in labels if label not in non_species}
    assert all(catalog.get(name).in_original for name in resolved)
    assert sum(sp.in_original for sp in catalog) == len(resolved)


def test_non_species_keep_their_genus_reachable(catalog):
    assert catalog.resolve("Pleurotus") is None
    assert "Pleurotus ostreatus" in [s.name for s in catalog.species_in_genus("pleurotus")]


def test_synonym_table_is_well_formed(catalog, synonym_rows):
    kinds = {"synonym", "misspelling", "non_species", "not_synonym"}
    for row in synonym_rows:
        assert row["kind"] in kinds, row
        assert row["evidence"].strip(), row
        if row["kind"] in ("synonym", "misspelling"):
            assert catalog.resolve(row["name"]) == row["accepted"], row


# --------------------------------------------------------------------------- the table


def test_rows_are_valid(catalog):
    assert 900 <= len(catalog) <= 1100
    assert catalog.names == sorted(catalog.names) == [s.name for s in catalog]
    for sp in catalog:
        assert sp.edibility in EDIBILITY_LEVELS, sp
        assert sp.genus == sp.name.split()[0]
        if not sp.sources:
            assert sp.edibility == "unknown", sp  # no source: never edible
        for other in sp.lookalikes:
            assert sp.name in catalog.get(other).lookalikes, (sp.name, other)  # symmetric
            assert other != sp.name


def _evidence(sp) -> list[tuple[str, str]]:
    return [tuple(entry.split(" (as ")[0].split(":", 1)) for entry in sp.sources]


def test_status_follows_the_rule_from_its_sources(catalog):
    for sp in catalog:
        evidence = _evidence(sp)
        assert builder.decide_status(evidence) == sp.edibility, sp
        assert builder.sources_disagree(evidence) == sp.sources_disagree, sp


def test_decide_status_rule():
    d = builder.decide_status
    assert d([]) == "unknown"
    assert d([("seed", "toxic")]) == "poisonous"  # nothing finer: the coarse word, safety first
    assert d([("seed", "edible")]) == "edible"
    assert d([("seed", "toxic"), ("wikipedia", "too hard to eat"), ("wildfooduk", "Inedible")]) == "inedible"
    assert d([("seed", "toxic"), ("wikipedia", "choice")]) == "choice"  # "toxic" only meant "not edible"
    assert d([("seed", "edible"), ("wildfooduk", "Poisonous")]) == "poisonous"  # a real poisonous report wins
    assert d([("wikipedia", "edible"), ("wildfooduk", "Poisonous")]) == "poisonous"
    assert d([("wikipedia", "deadly"), ("wikipedia", "choice")]) == "deadly"
    assert d([("wikipedia", "choice"), ("wikipedia", "not recommended")]) == "choice"  # advice, not a verdict
    assert d([("wikipedia", "not recommended")]) == "inedible"
    assert d([("wikipedia", "not recommended"), ("wildfooduk", "Edible")]) == "inedible"  # other source's word
    assert d([("wikipedia", "edible"), ("wikipedia", "allergenic")]) == "poisonous"
    with pytest.raises(ValueError, match="unmapped"):
        d([("wikipedia", "tasty")])


def test_sources_disagree_rule():
    s = builder.sources_disagree
    assert not s([("seed", "toxic"), ("wikipedia", "inedible")])  # "not edible" fits "inedible"
    assert not s([("seed", "toxic"), ("wikipedia", "poisonous"), ("wildfooduk", "Poisonous")])
    assert not s([("wikipedia", "deadly"), ("wildfooduk", "Poisonous")])
    assert not s([("seed", "edible"), ("wikipedia", "choice")])
    assert s([("seed", "toxic"), ("wikipedia", "edible")])
    assert s([("wikipedia", "deadly"), ("wikipedia", "choice")])
    assert s([("wikipedia", "choice"), ("wikipedia", "not recommended")])
    assert s([("wikipedia", "inedible"), ("wildfooduk", "Poisonous")])


@pytest.mark.parametrize(
    ("name", "statuses", "disagree"),
    [
        ("Trametes versicolor", {"inedible"}, False),  # seed "toxic", Wikipedia/Wild Food UK inedible
        ("Amanita caesarea", {"choice"}, True),  # Wikipedia "choice, not recommended", seed edible
        ("Amanita phalloides", {"deadly"}, False),
        ("Amanita muscaria", {"poisonous"}, False),
        ("Gyromitra esculenta", {"deadly"}, True),  # Wikipedia "deadly, choice"
        ("Amanita ocreata", {"deadly"}, False),
        ("Galerina marginata", {"deadly"}, False),
        ("Cantharellus cibarius", {"edible", "choice"}, None),
        ("Boletus edulis", {"edible", "choice"}, None),
        ("Psilocybe semilanceata", {"psychoactive"}, None),  # seed "toxic" does not hide the finer word
        ("Meripilus giganteus", {"edible"}, True),  # seed toxic; Wikipedia and Wild Food UK edible
        ("Amanita roseotincta", {"poisonous"}, False),  # seed "toxic" is its only source: stays a warning
    ],
)
def test_famous_cases(catalog, name, statuses, disagree):
    sp = catalog.get(name)
    assert sp.edibility in statuses, (sp.edibility, sp.sources)
    if disagree is not None:
        assert sp.sources_disagree is disagree


def test_a_dangerous_status_has_a_dangerous_word_behind_it(catalog):
    """Never poisonous only because of the seed list when a finer source names another status."""
    for sp in catalog:
        if not sp.dangerous:
            continue
        fine = [(s, v) for s, v in _evidence(sp) if s in builder.FINE_SOURCES]
        if fine:
            assert any(builder.source_status(s, v) in DANGEROUS for s, v in fine), sp
        else:
            assert {s for s, _ in _evidence(sp)} == {"seed"}, sp


def test_rule_counts(shared_catalog):
    """The numbers the README gives for the rule."""
    _, report = builder.build_catalog(shared_catalog)
    changes = {k: len(v) for k, v in report.rule_changes.items()}
    assert changes["poisonous from the seed list alone"] == 63
    assert (
        sum(n for k, n in changes.items() if k.startswith("poisonous -> "))
        - changes.get("poisonous -> psychoactive", 0)
        == 50
    )  # no longer "poisonous" because finer sources say inedible or edible
    assert len(report.disagree) == 102


def test_source_words_for_people(catalog):
    assert catalog.get("Amanita caesarea").source_words() == [
        ("Wikipedia", "choice, not recommended"),
        ("original project's list", "edible"),
    ]
    words = dict(catalog.get("Trametes versicolor").source_words())
    assert words["original project's list"] == "toxic (= not edible)"


def test_common_names_and_pages(catalog):
    assert not [sp.name for sp in catalog if sp.common_name.strip().lower() in ("none", "-", "n/a")]
    assert catalog.get("Agaricus excellens").common_name == ""
    assert catalog.get("Amanita phalloides").url == "https://en.wikipedia.org/wiki/Amanita_phalloides"
    assert sum(bool(sp.url) for sp in catalog) > 500
    assert all(sp.url.startswith("https://") for sp in catalog if sp.url)


def test_loads_a_table_without_the_optional_columns(tmp_path):
    with open(CATALOG_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:2]
    path = tmp_path / "old.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    old = Catalog.load(path)
    assert all(sp.url == "" and sp.sources_disagree is False for sp in old)


def test_species_in_genus(catalog):
    amanitas = {s.name for s in catalog.species_in_genus("Amanita")}
    assert {"Amanita phalloides", "Amanita muscaria", "Amanita virosa"} <= amanitas
    assert all(name.startswith("Amanita ") for name in amanitas)


def test_load_explicit_path(tmp_path):
    with open(CATALOG_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:3]
    path = tmp_path / "small.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    small = Catalog.load(path)
    assert len(small) == 3 and [s.name for s in small] == small.names


def test_parse_source_names():
    assert builder.parse_name("Boletus / Imleria badia") == builder.ParsedName(
        "Imleria badia",
        False,
        "Boletus badia",  # the heading's old genus, epithet as written
    )
    assert builder.parse_name("Amanita citrina var. alba").infraspecific
    assert builder.parse_name("Amanita phalloidesvar.alba").species == "Amanita phalloides"
    assert builder.parse_name("amanita muscaria").species == "Amanita muscaria"
    for not_a_species in (
        "Scleroderma spp.",
        "Amanita sect. Vaginatae",
        "Pleurotus",
        "Leccinum aurantiacum s. Pilat",
    ):
        assert builder.parse_name(not_a_species) is None


def test_rebuild_reproduces_committed_table(shared_catalog, tmp_path):
    rows, report = builder.build_catalog(shared_catalog)
    out = tmp_path / "catalog.csv"
    builder.write_catalog(rows, out)
    assert out.read_bytes() == CATALOG_CSV.read_bytes(), "run `python -m data_prep catalog` and commit"
    assert len(report.non_species) == 4 and report.label_species + len(report.added) <= len(rows)
