"""Reference photos: only licence-clean ones, each with its credit; the app works without any."""

from __future__ import annotations

import json

import pytest

from mushroom_id.core.catalog import default_catalog, read_confusion_rows
from mushroom_id.serving import reference_photos as rp


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ("Creative Commons Attribution-Share Alike 4.0", "CC BY-SA 4.0"),
        ("Creative Commons Attribution-ShareAlike 3.0 Unported", "CC BY-SA 3.0"),
        ("Creative Commons Attribution 2.0", "CC BY 2.0"),
        ("Creative Commons Attribution 4.0 International", "CC BY 4.0"),
        ("Creative Commons CC0 1.0 Universal Public Domain Dedication", "CC0"),
        ("Creative Commons Zero, Public Domain Dedication", "CC0"),
        ("Public domain", "public domain"),
        ("Creative Commons Attribution-NonCommercial 4.0", None),
        ("Creative Commons Attribution-NoDerivs 3.0", None),
        ("see origin", None),
        ("unknown", None),
        ("", None),
    ],
)
def test_commons_licence(raw, short):
    assert rp.commons_licence(raw) == short


def test_only_licence_clean_sources_are_shown(photo_manifest, photos_dir):
    catalog = default_catalog()
    kept = {}
    for row in photo_manifest:
        photo = rp.photo_from_manifest(row, catalog, photos_dir.parent)
        if photo is not None:
            kept.setdefault(row["source"], []).append(photo)
    assert set(kept) == {"commons", "inat"}  # never seed, web, webthumb, kaggle, webit, mo, wiki, inatse
    assert all(p.page.startswith(rp.COMMONS_PAGE) and p.licence for p in kept["commons"])
    assert all(p.page.startswith("https://www.gbif.org/occurrence/") for p in kept["inat"])
    # a "commons" row whose origin is a GitHub repository, not a Commons file page, is left out
    github = [r for r in photo_manifest if r["source"] == "commons" and r["origin"].startswith("github")]
    assert github and all(rp.photo_from_manifest(r, catalog, photos_dir.parent) is None for r in github)


def test_commons_preferred_and_credited(photos_dir):
    refs = rp.ReferencePhotos.from_manifest(photos_dir)
    assert len(refs) > 400 and refs.origin == "shared"
    photo = refs.get("Galerina marginata")
    assert photo.source == "commons" and photo.credit == "Wikimedia Commons · CC BY-SA 4.0"
    assert refs.get("Morchella esculenta").credit == "iNaturalist via GBIF"
    assert refs.get("Not a species") is None
    assert [p.species for p in refs.examples()] == list(rp.EXAMPLE_SPECIES)
    uri = refs.data_uri(photo)
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) < 40_000


def test_where_photos_come_from(monkeypatch, tmp_path, photos_dir):
    monkeypatch.setenv(rp.PHOTOS_ENV, "")
    assert not rp.load_reference_photos() and "turned off" in rp.load_reference_photos().note
    monkeypatch.setenv(rp.PHOTOS_ENV, str(tmp_path / "nothing"))
    assert not rp.load_reference_photos()

    exported = tmp_path / "exported"
    refs = rp.ReferencePhotos.from_manifest(photos_dir)
    made = rp.export(refs, exported, species=["Trametes versicolor", "Amanita phalloides", "Not a species"])
    per_species = {n: refs.photos(n) for n in ("Trametes versicolor", "Amanita phalloides")}
    assert made == {"photos": sum(map(len, per_species.values())), "examples": len(rp.EXAMPLE_SPECIES)}
    index = json.loads((exported / rp.INDEX).read_text())
    assert {e["species"] for e in index["photos"]} == {"Trametes versicolor", "Amanita phalloides"}
    monkeypatch.setenv(rp.PHOTOS_ENV, str(exported))
    loaded = rp.load_reference_photos()
    assert loaded.origin == "folder" and len(loaded) == 2
    # up to 3 per species, in the exported order (the clearest first)
    for name, photos in per_species.items():
        assert [p.page for p in loaded.photos(name)] == [p.page for p in photos]
    assert loaded.get("Trametes versicolor").page == refs.get("Trametes versicolor").page

    monkeypatch.delenv(rp.PHOTOS_ENV)
    monkeypatch.setenv("MUSHROOM_SHARED", str(tmp_path / "no_shared"))  # a fresh machine without ../shared
    none = rp.load_reference_photos()
    assert not none and none.origin == "none" and "no photos folder" in none.note


def test_app_without_reference_photos_says_so(monkeypatch, tmp_path, app_service):
    from mushroom_id.serving.flags import FlagStore
    from mushroom_id.serving.ui import Service, build_demo

    monkeypatch.delenv("MUSHROOM_EXAMPLES", raising=False)
    bare = Service.__new__(Service)
    bare.__dict__.update(app_service.__dict__)
    bare.refs = rp.ReferencePhotos.none("no photos folder here")
    demo = build_demo(service=bare, flag_store=FlagStore(tmp_path / "flags"))
    props = [c["props"] for c in demo.config["components"]]
    assert not [p for p in props if p.get("elem_id") == "examples"]  # no unlicensed fallback examples
    info = next(p["value"] for p in props if p.get("elem_id") == "model-info")
    assert "Reference photos are not available in this installation" in info and "no photos folder here" in info


def test_clearest_first_own_photo_never_and_unclear_never():
    """Photos are ordered by their fungus-gate score; one under MIN_CLEAR (a forest, a slide) is never
    shown; at most PER_SPECIES; the user's own photo (by sha256) is skipped."""
    photos = [
        rp.Photo("Amanita muscaria", f"/x/{n}.jpg", "inat", "", f"https://www.gbif.org/occurrence/{n}", n)
        for n in ("forest", "ok", "best", "good", "fine")
    ]
    scores = {"forest": 0.04, "ok": 0.3, "best": 0.9, "good": 0.6, "fine": 0.2}
    refs = rp.ReferencePhotos(photos, scores=scores)
    assert [p.sha256 for p in refs.photos("Amanita muscaria")] == ["best", "good", "ok"]
    assert refs.get("Amanita muscaria").sha256 == "best"
    assert refs.get("Amanita muscaria", exclude="best").sha256 == "good"
    assert "forest" not in [p.sha256 for p in refs.photos("Amanita muscaria", limit=10)]
    committed = rp.load_scores()
    assert len(committed) > 500 and all(0.0 <= v <= 1.0 for v in committed.values())


def test_confusion_pairs_without_photos_are_listed_in_the_readme(photos_dir):
    """The README lists exactly the curated confusions the comparison panel cannot show photo beside photo."""
    import re

    from mushroom_id.core.paths import REPO_DIR

    catalog = default_catalog()
    refs = rp.ReferencePhotos.from_manifest(photos_dir, catalog)
    covered, missing = rp.confusion_photo_coverage(refs, catalog)
    assert len(covered) + len(missing) == len(read_confusion_rows()) and covered
    for dangerous, other, lacking in covered + missing:
        sides = [dangerous, other]
        assert set(lacking) <= set(sides)
        if not lacking:  # a photo on both sides (a genus row: of at least one species of the genus)
            assert refs.get(dangerous) is not None
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- confusion-photo-gaps: start -->\n(.*?)<!-- confusion-photo-gaps: end -->", readme, re.S)
    listed = [line for line in block.group(1).splitlines() if line.strip()]
    assert listed == [f"- {d} / {o}: no photo of {', '.join(lack)}" for d, o, lack in missing]


def test_a_genus_confusion_is_covered_by_any_photo_of_the_genus():
    catalog = default_catalog()
    galerina = rp.Photo("Galerina marginata", "g.jpg", "commons", "CC0", "https://commons.wikimedia.org/wiki/File:g")
    psilocybe = rp.Photo("Psilocybe cyanescens", "p.jpg", "commons", "CC0", "https://commons.wikimedia.org/wiki/File:p")
    covered, missing = rp.confusion_photo_coverage(rp.ReferencePhotos([galerina, psilocybe]), catalog)
    assert ("Galerina marginata", "Psilocybe", []) in covered
    assert ("Galerina marginata", "Kuehneromyces mutabilis", ["Kuehneromyces mutabilis"]) in missing
    assert ("Amanita phalloides", "Russula virescens", ["Amanita phalloides", "Russula virescens"]) in missing
