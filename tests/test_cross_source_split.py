"""The shared photos enter through data_prep (ingest -> dedup -> normalize -> split) and get a
cross-source, content-keyed split; checked on hand-made items and on the real ../shared photos."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import pytest

from data_prep.grouping import cross_source_species, cross_source_split, held_out_sources
from data_prep.licences import normalise_licence
from data_prep.split import observation_id, split_groups


def test_observation_ids_from_origin_notes():
    assert observation_id("https://www.inaturalist.org/observations/346208475") == "inat:346208475"
    assert observation_id("GBIF occurrence 4516381400 (iNaturalist research grade)") == "gbif:4516381400"
    assert observation_id("https://www.gbif.org/occurrence/123") == "gbif:123"
    # a Mushroom Observer *image* page names no observation; neither do web notes
    assert observation_id("http://mushroomobserver.org/images/320/593825") == ""
    assert observation_id("web image") == ""


def test_mushroom_observer_images_group_by_observation_else_by_image():
    from data_prep.split import observation_keys

    img = "http://mushroomobserver.org/images/320/593825"
    big = "https://mushroomobserver.org/images/640/593825"
    # the same MO image in two sizes (no observation known): one group
    rows = [
        {"image_id": "a", "dup_group": "a", "origin": img, "raw_sha256": "f1", "species": "Sp"},
        {"image_id": "b", "dup_group": "b", "origin": big, "raw_sha256": "e2", "species": "Sp"},
        {
            "image_id": "c",
            "dup_group": "c",
            "origin": "http://mushroomobserver.org/images/320/7",
            "raw_sha256": "d3",
            "species": "Sp",
        },
    ]
    groups = split_groups(rows)
    assert groups["a"] == groups["b"] != groups["c"]
    # when the manifest has the observation, that is the key (two images of one observation join)
    with_obs = {"origin": img, "observation_id": "mo:42"}
    assert observation_keys(with_obs) == ["obs:mo:42"]
    assert observation_keys({"origin": "https://mushroomobserver.org/observations/42"}) == ["obs:mo:42"]
    assert observation_keys({"origin": img}) == ["obs:mo-image:593825"]


def test_held_out_sources_smallest_first_never_all():
    # 8 groups: A has 5, B 1, C 2 -> about 30% (2.4 -> 2) held out, smallest first: B (1), then C (2)
    groups = {f"a{i}": {"A"} for i in range(5)} | {"b0": {"B"}} | {"c0": {"C"}, "c1": {"C"}}
    assert held_out_sources(groups, 0.3, 0, "sp") == {"B", "C"}
    # two sources: the larger always trains, however the fraction is set
    assert held_out_sources({"x": {"X"}, "y0": {"Y"}, "y1": {"Y"}}, 0.99, 0, "sp") == {"X"}
    # a duplicate group that spans B and A ties them together: B can no longer be held out alone
    groups["ab"] = {"A", "B"}
    assert "B" not in held_out_sources(groups, 0.3, 0, "sp")


def test_cross_source_split_keeps_sources_apart_and_falls_back_for_one_source():
    items = [(f"m{i}", "Multi", f"gm{i}", "big") for i in range(10)]
    items += [(f"s{i}", "Multi", f"gs{i}", "small") for i in range(3)]
    items += [(f"o{i}", "Single", f"go{i}", "only") for i in range(6)]
    items += [("dup1", "Single", "gdup", "only"), ("dup2", "Single", "gdup", "only")]
    split = cross_source_split(items, seed=0)
    by = defaultdict(set)
    for key, sp, _, src in items:
        by[(sp, split[key] == "train")].add(src)
    assert by[("Multi", True)] == {"big"} and by[("Multi", False)] == {"small"}
    assert Counter(split[f"s{i}"] for i in range(3)) == Counter({"test": 2, "validation": 1})
    assert split["dup1"] == split["dup2"]  # a group never spans two splits
    assert {split[f"o{i}"] for i in range(6)} >= {"train"}  # single source: the ordinary grouped split
    rows = [(sp, src, split[k]) for k, sp, _, src in items]
    assert cross_source_species(rows) == {"Multi"}
    assert split == cross_source_split(list(reversed(items)), seed=0)  # order does not matter


def test_split_groups_merge_duplicates_and_observations_keyed_by_content():
    obs = "https://www.inaturalist.org/observations/1"
    rows = [
        {"image_id": i, "dup_group": g, "origin": o, "raw_sha256": h, "species": "Sp"}
        for i, g, o, h in (
            ("a", "a", obs, "f1"),
            ("b", "b", obs, "e2"),
            ("c", "b", "web image", "d3"),
            ("d", "d", "web image", "c4"),
        )
    ]
    groups = split_groups(rows)
    assert groups["a"] == groups["b"] == groups["c"] == "Sp|d3"  # species + smallest content hash of the group
    assert groups["d"] == "Sp|c4"


# ---- the real shared photos -----------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_manifest(photos_dir):
    """The shared photos prepared by the data pipeline (once; reused by every command)."""
    from data_prep.pipeline import prepare_folder
    from mushroom_id.engine.data import SHARED_WORK_DIR

    work = prepare_folder(photos_dir, SHARED_WORK_DIR)
    with open(work / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_ingest_keeps_every_catalog_photo_with_origin_and_licence(shared_manifest, photo_manifest):
    from mushroom_id.core.catalog import default_catalog

    catalog = default_catalog()
    taken = [r for r in shared_manifest if r["drop_reason"] != "" or r["status"] == "ok"]
    assert len(taken) == len(photo_manifest) == 3869
    catalog_photos = [r for r in photo_manifest if catalog.resolve(r["species"])]
    # ../shared/README.md: 3,225 photos of 566 catalog species, written before the catalog restored the
    # button mushroom Agaricus bisporus (one web photo): 3,226 of 567
    assert len(catalog_photos) == 3226
    assert len({catalog.resolve(r["species"]) for r in catalog_photos}) == 567
    not_catalog = [r for r in shared_manifest if r["drop_reason"].startswith("not a catalog species")]
    assert len(not_catalog) == 3869 - 3226
    # provenance survives: a Commons photo keeps its page and licence, a source its name
    commons = next(r for r in photo_manifest if r["source"] == "commons" and "commons.wikimedia" in r["origin"])
    row = next(r for r in shared_manifest if r["raw_sha256"] == commons["sha256"])
    assert row["origin"] == commons["origin"] and row["license_raw"] == commons["license"]
    assert row["license"] == normalise_licence(commons["license"]) != "unknown"
    assert row["source"] == "commons" and row["crawler"] == "local"


def test_real_split_is_cross_source_and_never_splits_a_group(shared_manifest):
    live = [r for r in shared_manifest if r["status"] == "ok"]
    assert all(r["split"] in ("train", "validation", "test") for r in live)
    train_src, held_src, sources = defaultdict(set), defaultdict(set), defaultdict(set)
    for r in live:
        sources[r["species"]].add(r["source"])
        (train_src if r["split"] == "train" else held_src)[r["species"]].add(r["source"])
    multi = {s for s, src in sources.items() if len(src) >= 2}
    assert len(multi) > 200
    for s in multi:
        assert not (train_src[s] & held_src[s]), f"{s}: a held-out source also trains"
    crossed = cross_source_species([(r["species"], r["source"], r["split"]) for r in live])
    assert crossed == {s for s in multi if held_src[s]}
    # observations (e.g. several photos of one iNaturalist observation) and duplicate groups stay on one side
    sides = defaultdict(set)
    for r in live:
        if observation_id(r["origin"]):
            sides[observation_id(r["origin"])].add(r["split"])
    several = [o for o in sides if sum(observation_id(r["origin"]) == o for r in live) > 1]
    assert several, "expected observations with several photos in ../shared"
    assert all(len(sides[o]) == 1 for o in several)


def test_split_does_not_depend_on_where_the_photos_are(photos_dir, photo_manifest, tmp_path):
    """The same photos under two other folders (links to the real files) give the same ids and split."""
    from data_prep.pipeline import prepare_folder

    species = {"Amanita muscaria", "Cantharellus cibarius", "Boletus edulis", "Hypholoma fasciculare"}
    chosen = [r for r in photo_manifest if r["species"] in species][:120]
    results = []
    for where in ("one/place", "another/deeper/place"):
        folder = tmp_path / where / "photos"
        folder.mkdir(parents=True)
        with open(folder / "manifest.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(photo_manifest[0]))
            w.writeheader()
            for r in chosen:
                link = folder.parent / r["path"]
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(photos_dir.parent / r["path"])
                w.writerow(r)
        work = prepare_folder(folder, tmp_path / f"work-{len(results)}", workers=1)
        with open(work / "manifest.csv", newline="") as f:
            results.append({r["image_id"]: r["split"] for r in csv.DictReader(f)})
    assert results[0] == results[1]
    assert set(results[0].values()) >= {"train", "validation", "test"}


def test_reader_caps_held_out_photos_per_species(shared_manifest):
    from mushroom_id.engine.data import HELD_OUT_CAP, load_splits

    data = load_splits("shared-photos")
    for split in ("validation", "test"):
        counts = Counter(data[split].targets.tolist())
        assert max(counts.values()) <= HELD_OUT_CAP
    # the biggest species really has more held-out photos than the cap (so the cap is doing something)
    held = Counter(r["species"] for r in shared_manifest if r["status"] == "ok" and r["split"] == "test")
    assert held.most_common(1)[0][1] > HELD_OUT_CAP
    assert data.cross_source and len(data.cross_source) > 150
