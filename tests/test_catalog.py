"""The species catalog: facts checked against the sources, the loader API, and that the committed table
is exactly what the builder makes from ../shared."""

from __future__ import annotations

import csv
import json
import re

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
    read_confusion_rows,
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
    # allergic / not recommended qualify an edible word; alone they mean "do not eat", never poisonous
    assert d([("wikipedia", "edible"), ("wikipedia", "allergenic")]) == "edible"
    assert d([("wikipedia", "choice"), ("wikipedia", "allergic")]) == "choice"
    assert d([("wikipedia", "allergic")]) == d([("wikipedia", "allergenic")]) == "inedible"
    assert d([("wikipedia", "poisonous"), ("wikipedia", "allergic")]) == "poisonous"  # a real toxic word still wins
    assert d([("wikipedia", "allergic"), ("wildfooduk", "Edible")]) == "inedible"  # another source's word
    assert d([("wikipedia", "edible when cooked")]) == d([("wildfooduk", "Edible when cooked")]) == "edible"
    assert d([("wikipedia", "choice"), ("wikipedia", "deadly raw")]) == "deadly"  # a deadly word is a deadly verdict
    assert d([("seed", "edible"), ("wikipedia", "deadly raw")]) == "deadly"
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
        ("Amanita muscaria", {"poisonous"}, False),  # Wikipedia "poisonous, psychoactive"
        ("Gyromitra esculenta", {"deadly"}, True),  # Wikipedia "deadly, choice"
        ("Morchella semilibera", {"edible", "choice"}, True),  # Wikipedia "choice, allergic": not poisonous
        ("Armillaria mellea", {"edible", "choice"}, True),  # Wikipedia "edible, allergic"
        ("Crepidotus versutus", {"inedible"}, False),  # Wikipedia "allergenic" alone: do not eat, not a toxin
        ("Paxillus involutus", {"deadly", "poisonous"}, False),
        ("Agaricus bisporus", {"edible", "choice"}, False),  # the button mushroom, restored
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
        == 51
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


# --------------------------------------------------------------------------- status words, reasons


def test_pinned_statuses_mean_what_they_say(catalog):
    semilibera = catalog.get("Morchella semilibera")
    assert not semilibera.dangerous and semilibera.edibility in ("edible", "choice")
    assert "allergic reactions reported (Wikipedia)" in semilibera.cautions()
    assert "edible only when cooked (Wild Food UK)" in semilibera.cautions()

    gyromitra = catalog.get("Gyromitra esculenta")
    assert gyromitra.edibility == "deadly" and gyromitra.sources_disagree
    assert "gyromitrin" in gyromitra.edibility_reason and "preparation" in gyromitra.edibility_reason
    assert gyromitra.edibility_reason_source.startswith("Wikipedia: Gyromitra esculenta")

    muscaria = catalog.get("Amanita muscaria")
    assert muscaria.edibility == "poisonous"
    assert {"poisonous", "psychoactive"} <= {w for _, words in muscaria.source_words() for w in words.split(", ")}
    assert "psychoactive" in muscaria.edibility_reason

    assert catalog.edibility("Amanita caesarea") == "choice"
    assert "not recommended (Wikipedia)" in catalog.get("Amanita caesarea").cautions()
    assert catalog.edibility("Trametes versicolor") == "inedible"

    paxillus = catalog.get("Paxillus involutus")
    assert paxillus.edibility in ("deadly", "poisonous")
    assert "haemolysis" in paxillus.edibility_reason and paxillus.edibility_reason_source


def test_no_allergy_word_makes_a_species_poisonous(catalog):
    """Allergic / not recommended are not toxicity claims: with no toxic word beside them, the species
    is not dangerous (Morchella semilibera was POISONOUS on one "allergic")."""
    qualifiers = {"allergic", "allergenic", "caution", "not recommended"}
    seen = 0
    for sp in catalog:
        words = {v.lower() for s, v in _evidence(sp) if s in builder.FINE_SOURCES}
        if words & qualifiers:
            seen += 1
            toxic = any(builder.source_status(s, v) in DANGEROUS for s, v in _evidence(sp) if s in builder.FINE_SOURCES)
            assert sp.dangerous == toxic, sp
    assert seen >= 80  # 81 species carry such a word (96 "not recommended" and 9 allergy rows in Wikipedia)


def test_every_edible_and_deadly_disagreement_says_why(catalog):
    both = [sp.name for sp in catalog if builder.needs_reason(_evidence(sp))]
    assert {"Gyromitra esculenta", "Gyromitra infula"} <= set(both)
    for name in both:
        sp = catalog.get(name)
        assert sp.edibility == "deadly" and sp.edibility_reason and sp.edibility_reason_source, sp


def test_the_build_stops_without_a_reason(shared_catalog, tmp_path):
    empty = tmp_path / "reasons.csv"
    empty.write_text("species,reason,source\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Gyromitra esculenta"):
        builder.build_catalog(shared_catalog, reasons_csv=empty)


def test_missing_species_are_kept(catalog):
    assert catalog.get("Agaricus bisporus").common_name  # the button mushroom, restored
    assert catalog.resolve("Rhodocybe gemina") == "Clitopilus geminus"
    assert catalog.get("Clitopilus geminus").in_original


# --------------------------------------------------------------------------- curated confusions


@pytest.fixture(scope="module")
def confusion_rows() -> list[dict]:
    return read_confusion_rows()


def test_every_species_in_the_confusion_table_resolves(catalog, confusion_rows):
    assert len(confusion_rows) >= 60
    pairs = set()
    for row in confusion_rows:
        dangerous = catalog.get(row["dangerous"])  # raises for a name outside the catalog
        assert dangerous.name == row["dangerous"], "write accepted names"
        assert dangerous.dangerous, row
        other = row["confused_with"]
        if " " in other:
            assert catalog.resolve(other) == other, row
        else:
            assert catalog.species_in_genus(other), row
        assert row["why"] and row["source"] and row["url"].startswith("https://"), row
        key = (row["dangerous"], other)
        assert key not in pairs, f"duplicate pair {key}"
        pairs.add(key)


def test_the_classic_confusions_are_there(catalog):
    def partners(name):
        return {c.other(name) for c in catalog.confusions(name)}

    assert {"Russula virescens", "Tricholoma equestre", "Volvariella volvacea", "Amanita fulva"} <= partners(
        "Amanita phalloides"
    )
    assert {"Kuehneromyces mutabilis", "Armillaria mellea", "Psilocybe semilanceata"} <= partners("Galerina marginata")
    assert {"Morchella esculenta", "Morchella semilibera", "Verpa conica"} <= partners("Gyromitra esculenta")
    assert {"Marasmius oreades", "Clitopilus prunulus"} <= partners("Clitocybe rivulosa")
    assert {"Clitocybe nebularis", "Calocybe gambosa"} <= partners("Entoloma sinuatum")
    assert "Cantharellus cibarius" in partners("Omphalotus olearius")
    assert "Macrolepiota procera" in partners("Chlorophyllum molybdites")
    assert "Amanita caesarea" in partners("Amanita muscaria")
    assert "Hypholoma capnoides" in partners("Hypholoma fasciculare")
    assert "Craterellus tubaeformis" in partners("Cortinarius rubellus")
    # the edible side sees the deadly one: a grisette's lookalikes now include the death cap
    assert "Amanita phalloides" in [s.name for s in catalog.lookalikes("Amanita vaginata")]
    assert "Galerina marginata" in [s.name for s in catalog.lookalikes("Kuehneromyces mutabilis")]


def test_a_confusion_keeps_its_reason_and_source(catalog):
    reason = catalog.lookalike_reason("Russula virescens", "Amanita phalloides")
    assert reason.startswith("known confusion: ") and "Wikipedia: Amanita phalloides" in reason
    assert catalog.lookalike_reason("Amanita phalloides", "Russula virescens") == reason  # either direction
    genus_row = [c for c in catalog.confusions("Psilocybe semilanceata") if c.dangerous == "Galerina marginata"]
    assert genus_row and genus_row[0].genus == "Psilocybe"
    # a Wild Food UK lookalike that the table does not curate still says where it comes from
    assert "Wild Food UK" in catalog.lookalike_reason("Cantharellus cibarius", "Hygrophoropsis aurantiaca")
    assert catalog.lookalike_reason("Boletus edulis", "Amanita phalloides") == ""


def _squash(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def test_wild_food_uk_sources_say_what_the_table_says(catalog, confusion_rows, shared_catalog):
    """Every pair cited to a Wild Food UK page is checked against that page's own text (in
    ../shared): the page is about one side and its confusion notes name the other (by scientific or
    common name; a genus row by its genus, and a page that only names the genus ("some of the deadly
    Amanitas", "other lepiotas") only where the table's source says "(names the genus ...)")."""
    pages = {e["source_url"]: e for e in json.loads((shared_catalog / "wildfooduk.json").read_text("utf-8"))}
    checked = 0
    for row in confusion_rows:
        if not row["source"].startswith("Wild Food UK"):
            continue
        page = pages.get(row["url"])
        assert page is not None, f"no Wild Food UK page {row['url']} in ../shared"
        text = _squash(f"{page['scientific_name']} {page['name']} {page['possible_confusion'] or ''}")
        for name in (row["dangerous"], row["confused_with"]):
            if " " not in name:
                names = [name]
            else:
                sp = catalog.get(name)
                names = [sp.name, *sp.synonyms, sp.common_name]
                if f"(names the genus {sp.genus})" in row["source"]:  # a genus-level note, said so in the table
                    names.append(sp.genus)
            assert any(_squash(n) and _squash(n) in text for n in names), (row, name)
        checked += 1
    assert checked >= 40


def test_reading_a_bad_confusion_table_fails_clearly(tmp_path):
    bad = tmp_path / "confusions.csv"
    bad.write_text("dangerous,confused_with,why,source,url\nAmanita phalloides,Russula virescens,green,,\n")
    with pytest.raises(ValueError, match="every pair needs why, a source"):
        read_confusion_rows(bad)
    bad.write_text("dangerous,confused_with,why,source,url\nAmanita phalloides,Notafungus atall,x,y,https://a\n")
    with pytest.raises(ValueError, match="Notafungus atall"):
        Catalog.load(CATALOG_CSV, confusions=bad)


def test_the_build_stops_on_a_confusion_whose_dangerous_side_is_not(shared_catalog, tmp_path):
    table = tmp_path / "confusions.csv"
    table.write_text(
        "dangerous,confused_with,why,source,url\n"
        "Morchella semilibera,Gyromitra esculenta,x,Wild Food UK: Semi-free Morel,https://example.org/\n"
    )
    with pytest.raises(ValueError, match="Morchella semilibera.*'edible'"):
        builder.build_catalog(shared_catalog, confusions_csv=table)
    table.write_text("dangerous,confused_with,why,source,url\nAmanita phalloides,Notagenus,x,y,https://example.org/\n")
    with pytest.raises(ValueError, match="genus 'Notagenus'"):
        builder.build_catalog(shared_catalog, confusions_csv=table)
