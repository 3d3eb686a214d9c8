"""The ingest stage on small hand-made folders: licences normalised with the text kept, creators taken
from the folder manifest, and files that cannot be taken in (a decompression bomb) reported one by one."""

from __future__ import annotations

import csv
import json
import struct
import zlib

from data_prep.__main__ import main
from data_prep.common import Manifest


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header announcing ``width x height`` pixels (a few hundred bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_reported_and_the_rest_ingested(tmp_path, photo_of, capsys):
    folder = tmp_path / "photos"
    species = folder / "Amanita_muscaria"
    species.mkdir(parents=True)
    (species / "good.jpg").write_bytes(photo_of("Amanita muscaria").read_bytes())
    (species / "bomb.png").write_bytes(bomb_png())
    (species / "notes.png").write_bytes(b"not an image at all")
    work = tmp_path / "work"
    assert main(["ingest", "--from", str(folder), "--work-dir", str(work)]) == 0
    rows = {r["source_url"].rsplit("/", 1)[1]: r for r in Manifest(work).rows()}
    assert rows["good.jpg"]["status"] == "ok" and (work / rows["good.jpg"]["raw_path"]).is_file()
    bomb = rows["bomb.png"]
    assert bomb["status"] == "dropped" and bomb["drop_reason"].startswith("decompression bomb (")
    assert "Amanita_muscaria/bomb.png" in bomb["drop_reason"] and not bomb["raw_path"]
    assert rows["notes.png"]["drop_reason"] == "not an image: Amanita_muscaria/notes.png"
    summary = json.loads((work / "summaries" / "ingest.json").read_text())
    assert summary["kept"] == 1 and summary["dropped"] == {"decompression bomb": 1, "not an image": 1}
    assert set(summary["files_not_taken_in"]) == {"Amanita_muscaria/bomb.png", "Amanita_muscaria/notes.png"}
    assert "decompression bomb" in capsys.readouterr().out


def test_licences_are_normalised_and_creators_kept(tmp_path, photo_of):
    folder = tmp_path / "photos"
    folder.mkdir()
    texts = {
        "a.jpg": ("Creative Commons Attribution-Share Alike 4.0", "CC-BY-SA-4.0", "<a href='x'>Ana B.</a>"),
        "b.jpg": ("https://creativecommons.org/licenses/by/3.0/legalcode", "CC-BY-3.0", ""),
        "c.jpg": ("see origin", "unknown", ""),
    }
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "path", "source", "origin", "license", "author"])
        for name, (raw, _, author) in texts.items():
            (folder / name).write_bytes(photo_of("Amanita muscaria").read_bytes())
            w.writerow(
                ["Amanita muscaria", name, "commons", f"https://commons.wikimedia.org/wiki/File:{name}", raw, author]
            )
    work = tmp_path / "work"
    assert main(["ingest", "--from", str(folder), "--work-dir", str(work)]) == 0
    rows = {r["origin"].rsplit(":", 1)[1]: r for r in Manifest(work).rows()}
    for name, (raw, licence, _) in texts.items():
        assert rows[name]["license"] == licence and rows[name]["license_raw"] == raw
    assert rows["a.jpg"]["creator"] == "Ana B." and rows["b.jpg"]["creator"] == ""


def test_every_file_left_out_is_named_by_the_users_own_path(tmp_path, photo_manifest, photos_dir, capsys):
    """Issue 29.3: in the class-folder layout a text file named .jpg was never mentioned and a truncated JPEG
    only under the work folder (~/.cache/mushroom_id/folders/...). Both layouts now name each file left out
    by the user's own path, in the output (even when the stages run quietly) and in one report file."""
    from data_prep.pipeline import prepare_folder

    def real(species: str, n: int) -> list[bytes]:
        return [(photos_dir.parent / r["path"]).read_bytes() for r in photo_manifest if r["species"] == species][:n]

    folder = tmp_path / "my photos"
    amanita, boletus = folder / "Amanita_muscaria", folder / "Boletus_edulis"
    amanita.mkdir(parents=True)
    boletus.mkdir()
    for i, data in enumerate(real("Amanita muscaria", 3)):
        (amanita / f"a{i}.jpg").write_bytes(data)
    *good, cut = real("Boletus edulis", 4)
    for i, data in enumerate(good):
        (boletus / f"b{i}.jpg").write_bytes(data)
    (boletus / "cut.jpg").write_bytes(cut[: len(cut) // 3])  # a truncated JPEG: its header reads fine
    (amanita / "text.jpg").write_text("this is a text file, not a photo")
    (boletus / "notes.txt").write_text("found under oaks")
    bad = [amanita / "text.jpg", boletus / "cut.jpg", boletus / "notes.txt"]
    work = tmp_path / "work"
    prepare_folder(folder, work, crops=False, quiet=True, workers=1)
    err = capsys.readouterr().err
    named = [line.strip() for line in err.splitlines() if line.strip().startswith(str(folder))]
    assert sorted(line.split(": ")[0] for line in named) == sorted(map(str, bad)), err
    assert str(work) not in "\n".join(named)
    with open(work / "left_out.csv", newline="") as f:
        report = {r["file"]: r for r in csv.DictReader(f)}
    assert set(map(str, bad)) <= set(report)
    assert report[str(boletus / "cut.jpg")]["stage"] == "normalize"
    assert report[str(amanita / "text.jpg")]["reason"].startswith("not an image")
    # asked again (the build is reused): still named
    prepare_folder(folder, work, crops=False, quiet=True, workers=1)
    assert str(boletus / "cut.jpg") in capsys.readouterr().err

    # the manifest layout, stage by stage: the same files named in each stage's output, by the path given
    other = tmp_path / "listed"
    other.mkdir()
    (other / "broken.jpg").write_bytes(cut[: len(cut) // 3])
    (other / "readme.jpg").write_text("not a photo")
    picked = [r for r in photo_manifest if r["species"] == "Amanita muscaria"][:3]
    with open(other / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "path"])
        for r in picked:
            w.writerow([r["species"], str(photos_dir.parent / r["path"])])
        w.writerow(["Amanita muscaria", "broken.jpg"])
        w.writerow(["Amanita muscaria", "readme.jpg"])
    work2 = tmp_path / "work2"
    for stage in ("ingest", "dedup", "normalize"):
        given = ["--from", str(other)] if stage == "ingest" else []
        assert main([stage, "--work-dir", str(work2), "--workers", "1", *given]) == 0
    out = capsys.readouterr().out
    assert f"{other / 'readme.jpg'}: not an image" in out
    assert f"{other / 'broken.jpg'}: " in out.split("normalize left out")[1]
    with open(work2 / "left_out.csv", newline="") as f:
        assert {r["file"] for r in csv.DictReader(f)} >= {str(other / "readme.jpg"), str(other / "broken.jpg")}


def test_all_help_names_the_chain_that_from_runs(capsys):
    """Issue 29.6: `all --help` said only "species -> crawl -> ..." though `--from` runs ingest instead."""
    import pytest

    with pytest.raises(SystemExit):
        main(["all", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "species -> crawl -> dedup -> normalize -> split -> publish" in text
    assert "(--from DIR: ingest -> dedup -> ...)" in text


def test_a_prepared_folder_says_where_its_cache_lives_every_time(tmp_path, photo_of, capsys):
    """Issue 29.6: a class folder is prepared under ~/.cache/mushroom_id/folders/<hash>; a reuse said nothing."""
    from data_prep.pipeline import prepare_folder

    folder = tmp_path / "photos" / "Amanita_muscaria"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(photo_of("Amanita muscaria").read_bytes())
    (folder / "b.jpg").write_bytes(photo_of("Amanita virosa").read_bytes())
    work = tmp_path / "cache" / "folders" / "0123"
    for _ in range(2):  # built, then reused
        prepare_folder(folder.parent, work, crops=False, quiet=True, workers=1)
        err = capsys.readouterr().err
        assert str(work) in err and str(folder.parent) in err
