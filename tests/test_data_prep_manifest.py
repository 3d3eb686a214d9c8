"""The manifest between stages is Parquet: its CSV copy for people, the migration of a work folder whose
manifest is still CSV (an earlier run), and clear errors for files that are not a manifest."""

from __future__ import annotations

import os

import pytest

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Journal, Manifest, ManifestError, write_csv


def _rows(n: int = 4, **extra) -> list[dict]:
    rows = []
    for i in range(n):
        r = dict.fromkeys(MANIFEST_COLUMNS, "")
        r.update(image_id=f"img{i:02d}", species="Amanita virosa", status="ok", source_url=f"http://x/{i},\n.jpg")
        rows.append(r | extra)
    return rows


def test_manifest_is_parquet_with_an_older_csv_copy_that_says_the_same(tmp_path):
    import pyarrow.parquet as pq

    m = Manifest(tmp_path)
    assert not m.exists()
    with pytest.raises(FileNotFoundError, match="run the earlier stages first"):
        m.rows()
    rows = _rows(width=600)  # a number, as a stage may leave it: read back as the CSV gave it, a string
    assert m.write(list(reversed(rows))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv", "manifest.parquet"]
    assert pq.read_schema(m.path).names == list(MANIFEST_COLUMNS)
    expected = [r | {"width": "600"} for r in rows]  # sorted by species, image_id; commas and newlines kept
    assert m.rows() == expected == m._read_csv()
    assert m.csv_path.stat().st_mtime_ns <= m.path.stat().st_mtime_ns  # the copy is never taken for newer
    split = [r | {"split": "train"} for r in m.rows()]
    m.write(split)
    assert m.rows() == split == m._read_csv()


def test_a_csv_manifest_newer_than_the_parquet_is_read_and_migrated(tmp_path, capsys):
    m = Manifest(tmp_path)
    m.write(_rows())
    edited = [r | {"species": "Amanita phalloides"} if r["image_id"] == "img01" else r for r in _rows()]
    write_csv(m.csv_path, edited, MANIFEST_COLUMNS)  # an older version's stage, or an edit by hand
    later = m.path.stat().st_mtime_ns + 1_000_000
    os.utime(m.csv_path, ns=(later, later))
    assert {r["image_id"]: r["species"] for r in m.rows()}["img01"] == "Amanita phalloides"
    assert "newer than manifest.parquet" in capsys.readouterr().err
    assert {r["image_id"]: r["species"] for r in Manifest(tmp_path).rows()}["img01"] == "Amanita phalloides"
    assert capsys.readouterr().err == ""  # migrated once: the Parquet is the newer file now


def test_files_that_are_not_a_manifest_get_a_clear_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("species,url\nAmanita virosa,http://x/1.jpg\n")
    with pytest.raises(ManifestError, match=r"manifest.csv: not a data_prep manifest \(no image_id, status column\)"):
        Manifest(tmp_path).rows()
    (tmp_path / "manifest.parquet").write_bytes(b"PAR1 cut short by a disk full")
    with pytest.raises(ManifestError, match="manifest.parquet: not a readable manifest"):
        Manifest(tmp_path).rows()


def test_an_earlier_runs_csv_manifest_is_migrated_and_the_killed_stage_continues(tmp_path, photos_dir, capsys):
    """A work folder from before manifest.parquet: its manifest.csv and a normalize journal cut short by a kill.
    The rerun reads the CSV, rewrites it as Parquet and redoes only what the journal lacks."""
    work = tmp_path / "work"
    rows = []
    for i, path in enumerate(sorted((photos_dir / "Amanita_virosa").glob("*.jpg"))[:5]):
        r = dict.fromkeys(MANIFEST_COLUMNS, "")
        r.update(image_id=f"img{i:02d}", species="Amanita virosa", raw_path=str(path), raw_sha256=f"sha{i}")
        rows.append(r | {"status": "ok"})
    Manifest(work).write(rows)
    assert main(["normalize", "--work-dir", str(work), "--workers", "1"]) == 0
    done = Manifest(work).rows()
    journal = work / "cache" / "normalize.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    # as an earlier version left it when killed inside normalize: the manifest before normalize, as CSV
    journal.write_text("".join(lines[:-2]) + lines[-2][:20])
    (work / "manifest.parquet").unlink()
    write_csv(work / "manifest.csv", rows, MANIFEST_COLUMNS)
    first = (work / done[0]["path"]).stat().st_mtime_ns
    capsys.readouterr()

    assert main(["normalize", "--work-dir", str(work), "--workers", "1"]) == 0
    assert "manifest.csv (from an earlier run): read, and rewritten as manifest.parquet" in capsys.readouterr().err
    assert Manifest(work).rows() == done == Manifest(work)._read_csv()  # nothing lost; the copy is rewritten too
    assert (work / done[0]["path"]).stat().st_mtime_ns == first  # not redone
    assert len(Journal(journal, key="key").load()) == len(lines)
