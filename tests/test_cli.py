"""The command line, run as a user would (a subprocess), on real photos."""

from __future__ import annotations

import json
import subprocess
import sys

from mushroom_id.core.catalog import default_catalog


def run(*args):
    return subprocess.run([sys.executable, "-m", "mushroom_id", *args], capture_output=True, text=True, timeout=300)


def test_predict_prints_the_answer_first_and_json(photo_of, tmp_path):
    good = photo_of("Boletus edulis", "wiki")
    bad = tmp_path / "notes.jpg"
    bad.write_text("<html>this is not a photo</html>")
    human = run("predict", str(good), str(bad))
    assert human.returncode == 2  # one photo failed
    lines = [line.strip() for line in human.stdout.strip().splitlines()[1:]]
    # the top name first, then ONE caution (the red panel or the neutral line), the disclaimer last
    assert lines[0].startswith(("Most likely", "Best guess", "The photo is not enough", "Most likely a species"))
    assert lines[1] == "DANGER:" or lines[1].startswith("Deadly species can look like this one")
    assert lines[-1].startswith("This is an automated guess")
    assert "WARNING" not in human.stdout and "((" not in human.stdout and "))" not in human.stdout
    assert len(lines) <= 12, lines  # not 14-20 warning lines
    assert "notes.jpg" in human.stderr and "not" in human.stderr.lower()

    machine = run("predict", "--json", "--top-k", "3", str(good))
    assert machine.returncode == 0, machine.stderr
    result = json.loads(machine.stdout)[str(good)]
    catalog = default_catalog()
    assert len(result["candidates"]) == 3
    assert all(c["species"] in catalog for c in result["candidates"])
    assert result["disclaimer"]


def test_observation_mode(photo_manifest, photos_dir):
    paths = [
        str(photos_dir.parent / r["path"])
        for r in photo_manifest
        if r["species"] == "Cantharellus cibarius" and r["source"] == "inatse"
    ][:2]
    out = run("predict", "--json", "--observation", *paths)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["observation"]["photos"] == 2
