"""Dedup stage on real web-scraped photos from ../shared (read in place through absolute raw paths)."""

from __future__ import annotations

import itertools

import pytest
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Manifest, read_csv
from data_prep.dedup import deduplicate
from data_prep.near_duplicates import hamming, hash_pairs, phash_pair


def phash_encodings(files):
    return {f: phash_pair(f)[0] for f in files}


def near_duplicate_pairs(encodings, threshold=8):
    """imagededup's own search: the reference the pipeline's numpy search is checked against."""
    import warnings

    from imagededup.methods import PHash

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        found = PHash(verbose=False).find_duplicates(encoding_map=encodings, max_distance_threshold=threshold)
    return {tuple(sorted((str(a), str(b)))) for a, dups in found.items() for b in dups}


# Checked by eye (see data_prep/README.md). Paths relative to ../shared/data/photos.
EXACT_CROSS_SPECIES = (
    "Boletus_edulis/webthumb_train_boletus_edulis_181.jpg",
    "Boletus_erythropus/webthumb_train_boletus_erythropus_61.jpg",
)
NEAR_CROSS_SPECIES = ("Amanita_muscaria/wiki_1.jpg", "Amanita_hongoi/web_1.jpg")  # a fly agaric filed as A. hongoi
NEAR_TRAIN_VAL_LEAK = (
    "Boletus_edulis/webthumb_val_boletus_edulis_227.jpg",  # the shared set's own val/train leak
    "Boletus_edulis/webthumb_train_boletus_edulis_101.jpg",
)
NEAR_RESIZED = (
    "Boletus_edulis/webthumb_train_boletus_edulis_151.jpg",  # small copy of a larger photo
    "Boletus_edulis/webthumb_train_boletus_edulis_129.jpg",
)
DISTINCT = ("Amanita_vaginata/webthumb_train_amanita_vaginata_170.jpg", "Rhodocollybia_butyracea/inat_4527999512_0.jpg")


def _rows_for(photos_dir, photo_manifest, rel_paths):
    """Manifest rows as the crawl would write them, pointing at the shared photos in place."""
    from mushroom_id.core.catalog import default_catalog

    catalog = default_catalog()
    truth = {r["path"].split("/", 1)[1]: r for r in photo_manifest}
    rows = []
    for rel in rel_paths:
        path = photos_dir / rel
        with Image.open(path) as img:
            w, h = img.size
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(
            image_id=rel.replace("/", "__")[:-4],
            species=catalog.resolve(truth[rel]["species"]),
            source_url=f"file://{path}",
            raw_path=str(path),
            raw_sha256=truth[rel]["sha256"],
            raw_width=str(w),
            raw_height=str(h),
            raw_format="JPEG",
            status="ok",
            crawler="url-list",
            license=truth[rel]["license"],
        )
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def dedup_run(photos_dir, photo_manifest, tmp_path_factory):
    edulis = sorted(f"Boletus_edulis/{p.name}" for p in (photos_dir / "Boletus_edulis").glob("webthumb_*.jpg"))
    rel = sorted(set(edulis) | set(EXACT_CROSS_SPECIES + NEAR_CROSS_SPECIES + DISTINCT))
    work = tmp_path_factory.mktemp("dedup")
    Manifest(work).write(_rows_for(photos_dir, photo_manifest, rel))
    assert main(["dedup", "--work-dir", str(work), "--workers", "2"]) == 0
    rows = {r["image_id"]: r for r in Manifest(work).rows()}
    return work, rows


def _row(rows, rel):
    return rows[rel.replace("/", "__")[:-4]]


def _pixels(photos_dir, rel):
    with Image.open(photos_dir / rel) as img:
        return img.size[0] * img.size[1]


def test_known_cross_species_duplicates_are_quarantined(dedup_run):
    work, rows = dedup_run
    for pair in (EXACT_CROSS_SPECIES, NEAR_CROSS_SPECIES):
        a, b = (_row(rows, p) for p in pair)
        assert a["species"] != b["species"]
        for r in (a, b):
            assert (r["status"], r["drop_stage"]) == ("dropped", "dedup")
            assert r["drop_reason"].startswith("label conflict")
    report = list(read_csv(work / "dedup_report.csv"))
    conflict_ids = {(x["image_id"], x["other_id"]) for x in report if x["kind"].startswith("label conflict")}
    ids = tuple(sorted(_row(rows, p)["image_id"] for p in EXACT_CROSS_SPECIES))
    assert ids in {tuple(sorted(p)) for p in conflict_ids}
    kinds = {x["kind"] for x in report}
    assert {"label conflict (exact)", "label conflict (near)", "near duplicate"} <= kinds


@pytest.mark.parametrize("pair", [NEAR_TRAIN_VAL_LEAK, NEAR_RESIZED])
def test_known_near_duplicates_keep_the_larger_copy(dedup_run, photos_dir, pair):
    _, rows = dedup_run
    a, b = (_row(rows, p) for p in pair)
    big, small = (a, b) if _pixels(photos_dir, pair[0]) > _pixels(photos_dir, pair[1]) else (b, a)
    assert big["status"] == "ok"
    assert small["status"] == "dropped" and small["drop_reason"].startswith("near duplicate of")
    assert small["duplicate_of"] == big["image_id"] or rows[small["duplicate_of"]]["status"] == "ok"


def test_distinct_photos_survive_and_no_kept_pair_is_a_duplicate(dedup_run, photos_dir):
    _, rows = dedup_run
    assert all(_row(rows, p)["status"] == "ok" for p in DISTINCT)
    kept = [r for r in rows.values() if r["status"] == "ok"]
    # independent check with imagededup's own encoder: no two kept images within the threshold
    codes = phash_encodings([r["raw_path"] for r in kept])
    assert len(codes) == len(kept)
    close = near_duplicate_pairs(codes, threshold=8)
    assert not close
    assert len({r["raw_sha256"] for r in kept}) == len(kept)
    dropped = [r for r in rows.values() if r["status"] == "dropped"]
    assert len(dropped) >= 30  # the web-thumbnail set of B. edulis holds dozens of duplicates
    # every dropped duplicate points at a kept image that is really close to it
    for r in dropped:
        if r["duplicate_of"]:
            kept_row = rows[r["duplicate_of"]]
            assert kept_row["status"] == "ok"
            assert hamming(r["phash"], kept_row["phash"]) <= 8 or r["raw_sha256"] == kept_row["raw_sha256"]


def test_rerun_is_idempotent_and_reuses_hashes(dedup_run):
    work, rows = dedup_run
    journal = work / "cache" / "phash.jsonl"
    before = journal.read_text()
    assert main(["dedup", "--work-dir", str(work), "--workers", "1"]) == 0
    assert journal.read_text() == before  # nothing hashed again
    assert {r["image_id"]: r for r in Manifest(work).rows()} == rows


def test_rules_on_synthetic_rows():
    def row(iid, species, w, phash, sha=None):
        r = dict.fromkeys(MANIFEST_COLUMNS, "")
        r.update(
            image_id=iid,
            species=species,
            raw_width=str(w),
            raw_height="100",
            phash=phash,
            raw_sha256=sha or iid,
            status="ok",
            raw_path=f"raw/{iid}.jpg",
        )
        return r

    rows = [
        row("a", "S1", 100, "0000000000000000"),
        row("b", "S1", 300, "0000000000000003"),
        row("c", "S1", 200, "00000000000000ff"),  # 8 bits from a, 6 from b: same cluster
        row("d", "S2", 100, "ffffffffffffffff"),
        row("e", "S3", 100, "fffffffffffffff0"),  # conflict
        row("f", "S1", 100, "0f0f0f0f0f0f0f0f"),
        row("g", "S1", 90, "0f0f0f0f0f0f0f0f", sha="f"),
    ]  # exact
    codes = {r["image_id"]: r["phash"] for r in rows}
    edges = []
    for x, y in itertools.combinations(sorted(codes), 2):
        d = hamming(codes[x], codes[y])
        exact = (
            next(r for r in rows if r["image_id"] == x)["raw_sha256"]
            == next(r for r in rows if r["image_id"] == y)["raw_sha256"]
        )
        if d <= 10 or exact:
            edges.append((x, y, d, exact))
    report = deduplicate(rows, edges, threshold=8, group_threshold=10)
    by = {r["image_id"]: r for r in rows}
    assert by["b"]["status"] == "ok"  # the largest of a, b, c
    assert by["a"]["drop_reason"] == "near duplicate of b (phash distance 2)"
    assert by["c"]["drop_reason"] == "near duplicate of b (phash distance 6)"
    assert by["d"]["drop_reason"].startswith("label conflict") and by["e"]["drop_reason"].startswith("label conflict")
    assert by["g"]["drop_reason"] == "exact duplicate of f"
    assert {x["kind"] for x in report} == {"near duplicate", "exact duplicate", "label conflict (near)"}


def test_numpy_pair_search_matches_imagededup(photos_dir):
    files = sorted(str(p) for p in (photos_dir / "Amanita_vaginata").glob("*.jpg"))[:120]
    enc = phash_encodings(files)
    keys = list(enc)
    for threshold in (4, 8, 12):
        ours = {
            (min(keys[i], keys[j]), max(keys[i], keys[j])) for i, j, _ in hash_pairs([enc[k] for k in keys], threshold)
        }
        assert ours == near_duplicate_pairs(enc, threshold)
    assert ours  # the set does contain near duplicates


@pytest.mark.slow
def test_optional_cnn_pairs_from_offline_backbone(photos_dir, tmp_path):
    from data_prep.dedup import cnn_pairs

    rels = (*NEAR_TRAIN_VAL_LEAK, *DISTINCT)
    rows = [
        {"image_id": f"i{k}", "raw_path": str(photos_dir / r), "raw_sha256": f"s{k}", "species": "Sp"}
        for k, r in enumerate(rels)
    ]
    pairs = cnn_pairs(rows, tmp_path, threshold=0.9)  # absolute raw paths; the cache goes to tmp_path
    assert [(a, b) for a, b, _ in pairs] == [("i0", "i1")]
    assert (tmp_path / "cache" / "embeddings-imagenet-lite0.npz").stat().st_size > 0
    for r in rows:
        r["raw_path"] = "/nonexistent"  # cached: nothing is read again
    assert cnn_pairs(rows, tmp_path, threshold=0.9) == pairs


# Same specimen, re-shot (issue 24): PHash 16-24 and cosine 0.81-0.89, so neither PHash <= 10 nor cosine >= 0.9
# groups them; before the joint pass the first pair sat in test and train.
RESHOT = (
    ("Hygrophorus_poetarum/webit_cd788b9aac.jpg", "Hygrophorus_poetarum/webit_f37cf9a210.jpg"),
    (
        "Amanita_vaginata/webthumb_train_amanita_vaginata_112.jpg",
        "Amanita_vaginata/webthumb_train_amanita_vaginata_263.jpg",
    ),
)


@pytest.mark.slow
def test_joint_phash_and_embedding_pass_groups_reshot_specimens(photos_dir, photo_manifest, tmp_path):
    import json

    rel = [p for pair in RESHOT for p in pair] + [DISTINCT[0]]  # + an unrelated A. vaginata photo
    work = tmp_path / "work"
    Manifest(work).write(_rows_for(photos_dir, photo_manifest, rel))
    assert main(["dedup", "--work-dir", str(work), "--workers", "1", "--cnn"]) == 0
    group = {r["raw_path"].split("photos/", 1)[1]: r["dup_group"] for r in Manifest(work).rows()}
    for a, b in RESHOT:
        assert group[a] == group[b], (a, b)
    assert len({group[a] for a, _ in RESHOT} | {group[DISTINCT[0]]}) == 3
    summary = json.loads((work / "summaries" / "dedup.json").read_text())
    assert summary["joint_pairs_grouped"] == 2 and summary["embedding_pairs_grouped"] == 0
    assert (summary["joint_phash"], summary["joint_cosine"]) == (24, 0.8)
    # what made them a pair: both measures inside the joint thresholds, neither inside its own strict one
    from data_prep.dedup import joint_near_copies

    rows = Manifest(work).rows()  # with the PHash dedup wrote
    found = joint_near_copies(rows, work, 24, 0.80)
    assert len(found) == 2 and all(10 < d <= 24 and 0.80 <= c < 0.90 for _, _, d, c in found)
    # without the joint pass (thresholds that cannot be met) the pairs stay apart, as before the fix
    assert main(["dedup", "--work-dir", str(work), "--workers", "1", "--cnn", "--joint-phash", "-1"]) == 0
    group = {r["raw_path"].split("photos/", 1)[1]: r["dup_group"] for r in Manifest(work).rows()}
    assert all(group[a] != group[b] for a, b in RESHOT)
