"""Hardening: hostile images through the API and the pipeline, SIGKILLed pipeline stages, a killed
and resumed training run, corrupt checkpoints, labels outside the catalog, and Hub token hygiene.

Numbers and commands are collected in docs/reliability.md. Options (environment variables):
  MUSHROOM_KILLS        SIGKILLs per pipeline stage before the final rerun (default 2)
  MUSHROOM_KILL_SEED    seed of the random kill points (default 0); printed with each stage's kills
  MUSHROOM_FUZZ_CASES   as in test_fuzz.py; half as many mutated photos go through normalize here
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_fuzz import _png_bomb, mutate

from data_prep.__main__ import main as data_prep_main
from data_prep.common import MANIFEST_COLUMNS, Manifest
from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.paths import REPO_DIR

KILLS = int(os.environ.get("MUSHROOM_KILLS", "2"))
KILL_SEED = int(os.environ.get("MUSHROOM_KILL_SEED", "0"))
FAKE_TOKEN = "hf_FAKEtokenForTests0123456789abcdefXYZ"


# ---------------------------------------------------------------- hostile images


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def hostile_files(photo_path: Path) -> dict[str, bytes]:
    """Every kind of bad or unusual upload from the issue, built from one real photo."""
    data = photo_path.read_bytes()
    photo = Image.open(photo_path).convert("RGB")
    rng = np.random.default_rng(0)
    rgba = np.asarray(photo.convert("RGBA")).copy()
    rgba[..., 3] = 160
    rgba[: rgba.shape[0] // 5, :, 3] = 0  # a fully transparent band
    frames = [photo.resize((160, 120))] + [Image.new("RGB", (160, 120), (i, 40, 0)) for i in range(0, 250, 25)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], loop=0, duration=80)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    return {
        "zero_bytes.jpg": b"",
        "random_bytes.jpg": rng.bytes(20_000),
        "truncated.jpg": data[: len(data) // 2],
        "page.jpg": b"<!DOCTYPE html><html><head><title>403</title></head><body>Access denied</body></html>\n",
        "notes.jpg": b"chanterelles: 2 kg\nporcini: 1 kg\n",
        "alpha.png": _encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "palette.png": _encode(photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG"),
        "sixteen_bit.png": _encode(Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257), "PNG"),
        "grayscale.png": _encode(photo.convert("L"), "PNG"),
        "cmyk.jpg": _encode(photo.convert("CMYK"), "JPEG"),
        "animated.gif": gif.getvalue(),
        "exif_rotated.jpg": _encode(photo, "JPEG", quality=92, exif=exif.tobytes()),
        "one_pixel.png": _encode(Image.new("RGB", (1, 1), (180, 120, 60)), "PNG"),
        "bomb.png": _png_bomb(30_000, 30_000),  # ~1 KB claiming 900 megapixels: never allocated
        # 24 MB: a real JPEG followed by junk, just under the 25 MB upload limit (the 26 MB refusal
        # by client and server is tested in test_app.py)
        "huge_file.jpg": data + rng.bytes(24 * 1024 * 1024 - len(data)),
        "giant_pixels.jpg": _encode(photo.resize((7000, 5600)), "JPEG", quality=70),  # 39 MP, decoded drafted
    }


# name -> None (a prediction) or words the user-facing error must contain
API_EXPECT = {
    "zero_bytes.jpg": "zero_bytes.jpg is empty",
    "random_bytes.jpg": "random_bytes.jpg is not an image file",
    "truncated.jpg": "truncated.jpg could not be decoded",
    "page.jpg": "page.jpg is not an image file",
    "notes.jpg": "notes.jpg is not an image file",
    "alpha.png": None,
    "palette.png": None,
    "sixteen_bit.png": None,
    "grayscale.png": None,
    "cmyk.jpg": None,
    "animated.gif": None,
    "exif_rotated.jpg": None,
    "one_pixel.png": "one_pixel.png is only 1x1 pixels",
    "bomb.png": "bomb.png has too many pixels",
    "huge_file.jpg": None,
    "giant_pixels.jpg": None,
}

# name -> "" (kept) or the start of the manifest's drop_reason
NORMALIZE_EXPECT = {
    "zero_bytes.jpg": "not an image",
    "random_bytes.jpg": "not an image",
    "truncated.jpg": "truncated or corrupt",
    "page.jpg": "not an image",
    "notes.jpg": "not an image",
    "alpha.png": "",
    "palette.png": "",
    "sixteen_bit.png": "grayscale only",
    "grayscale.png": "grayscale only",
    "cmyk.jpg": "",
    "animated.gif": "",
    "exif_rotated.jpg": "",
    "one_pixel.png": "tiny (1x1",
    "bomb.png": "too many pixels",
    "huge_file.jpg": "",
    "giant_pixels.jpg": "",
    "over_limit.jpg": "too large",
}


@pytest.fixture(scope="module")
def base_photo(photo_of):
    return photo_of("Boletus edulis", "inatse")


@pytest.fixture(scope="module")
def hostile_dir(base_photo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, data in hostile_files(base_photo).items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("name", list(API_EXPECT))
def test_hostile_upload_through_the_api(app_url, app_service, hostile_dir, name):
    """Each file: a sound prediction, or an AppError whose message names the file and the problem."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    path = hostile_dir / name
    expected = API_EXPECT[name]
    t0 = time.perf_counter()
    if expected is None:
        result = client.predict(handle_file(str(path)), api_name="/classify")
        assert result["photos"] == 1 and np.isfinite(result["fungus_score"])
        assert result["disclaimer"] and result["message"]
        if result["is_fungus"]:
            assert 1 <= len(result["candidates"]) <= 5
            # the top of a distribution over the model's species holds at least 1/N of it
            assert result["candidates"][0]["probability"] >= 1 / result["model"]["num_species"] - 1e-4
        if name == "exif_rotated.jpg":  # the app sees the photo upright, as a person does
            # rotated by hand, as bare pixels (a transposed PIL image keeps its EXIF in .info)
            upright = Image.fromarray(np.asarray(Image.open(path).convert("RGB").transpose(Image.Transpose.ROTATE_270)))
            reference = app_service.predictor(None).predict(upright)
            assert [c["species"] for c in result["candidates"]] == [c["species"] for c in reference["candidates"]]
            assert [c["probability"] for c in result["candidates"]] == pytest.approx(
                [c["probability"] for c in reference["candidates"]], abs=2e-3
            )
    else:
        with pytest.raises(AppError) as err:
            client.predict(handle_file(str(path)), api_name="/classify")
        message = err.value.message
        assert expected in message, message
        assert "Traceback" not in message and len(message) < 300
    assert time.perf_counter() - t0 < 60  # never a hang (generous: 2 busy cores)


def _crawl_row(image_id: str, species: str, raw_path: str, sha: str = "") -> dict:
    row = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(
        image_id=image_id,
        species=species,
        query=f'"{species}"',
        crawler="url-list",
        source_url=f"https://example.org/{image_id}",
        license="unknown",
        raw_path=raw_path,
        raw_sha256=sha or hashlib.sha256(image_id.encode()).hexdigest(),
        status="ok",
    )
    return row


def test_hostile_files_through_the_normalize_stage(hostile_dir, tmp_path):
    """Every hostile file ends as a manifest row: kept, or dropped by normalize with a reason."""
    work = tmp_path / "work"
    raw = work / "raw" / "Boletus_edulis"
    raw.mkdir(parents=True)
    names = sorted(NORMALIZE_EXPECT)
    for name in names:
        if name == "over_limit.jpg":
            with open(raw / name, "wb") as f:
                f.truncate(26 * 1024 * 1024)  # sparse: no 26 MB written
        else:
            shutil.copy(hostile_dir / name, raw / name)
    rows = [_crawl_row(f"h{i:02d}", "Boletus edulis", f"raw/Boletus_edulis/{n}") for i, n in enumerate(names)]
    Manifest(work).write(rows)
    assert data_prep_main(["normalize", "--work-dir", str(work), "--workers", "2"]) == 0
    out = {r["image_id"]: r for r in Manifest(work).rows()}
    for i, name in enumerate(names):
        r, expected = out[f"h{i:02d}"], NORMALIZE_EXPECT[name]
        if expected:
            assert (r["status"], r["drop_stage"]) == ("dropped", "normalize"), (name, r)
            assert r["drop_reason"].startswith(expected), (name, r["drop_reason"])
            assert not r["path"]
        else:
            assert r["status"] == "ok" and not r["drop_reason"], (name, r)
            img = Image.open(work / r["path"])
            assert (img.format, img.mode) == ("JPEG", "RGB") and max(img.size) <= 600
            assert hashlib.sha256((work / r["path"]).read_bytes()).hexdigest() == r["sha256"]
    rotated = Image.open(work / out[f"h{names.index('exif_rotated.jpg'):02d}"]["path"])
    original = Image.open(hostile_dir / "exif_rotated.jpg")
    assert rotated.size == original.size[::-1]  # EXIF orientation applied


def test_mutated_photos_through_normalize_never_crash(photo_manifest, photos_dir):
    """The fuzz mutations of test_fuzz.py, through the pipeline's normalize: a JPEG or a drop reason."""
    from data_prep.normalize import normalize_image

    rows = [r for r in photo_manifest if r["source"] in ("inat", "wiki", "web", "seed")]
    rng = np.random.default_rng(KILL_SEED)
    seeds = [(photos_dir.parent / rows[i]["path"]).read_bytes() for i in rng.choice(len(rows), 10, replace=False)]
    cases = int(os.environ.get("MUSHROOM_FUZZ_CASES", "300")) // 2
    outcomes: dict[str, int] = {}
    for case in range(cases):
        kind, data = mutate(seeds[case % len(seeds)], rng)
        try:
            out, reason, _ = normalize_image(data)
        except Exception as e:  # pragma: no cover - the failure being hunted
            pytest.fail(f"case {case} ({kind}): normalize_image raised {type(e).__name__}: {e}")
        assert (out is None) == bool(reason)
        key = "kept" if out else reason.split(" (")[0]
        outcomes[key] = outcomes.get(key, 0) + 1
    print("normalize fuzz outcomes:", dict(sorted(outcomes.items())))
    assert outcomes.get("kept", 0) > cases // 10 and cases - outcomes.get("kept", 0) > cases // 10


# ---------------------------------------------------------------- interrupted pipeline stages

KILL_STAGES = ("dedup", "normalize", "split", "publish")
BEFORE = {"dedup": "crawl", "normalize": "dedup", "split": "normalize", "publish": "split"}
NEAR_PAIRS = (  # known duplicates in ../shared (see test_data_prep_dedup.py): dedup has real work to do
    "Boletus_edulis/webthumb_train_boletus_edulis_181.jpg",
    "Boletus_erythropus/webthumb_train_boletus_erythropus_61.jpg",
    "Amanita_muscaria/wiki_1.jpg",
    "Amanita_hongoi/web_1.jpg",
    "Boletus_edulis/webthumb_val_boletus_edulis_227.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_101.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_151.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_129.jpg",
)


def _crawled_work_dir(work: Path, photos_dir: Path, photo_manifest: list[dict]) -> None:
    """A work folder as the crawl leaves it: ~130 real photos (read in place) and two broken files."""
    catalog = default_catalog()
    truth = {r["path"].split("/", 1)[1]: r for r in photo_manifest}
    picked = set(NEAR_PAIRS)
    for folder, n in (
        ("Boletus_edulis", 60),
        ("Amanita_virosa", 25),
        ("Cantharellus_cibarius", 25),
        ("Amanita_phalloides", 3),
        ("Coprinus_comatus", 15),
    ):
        picked |= {f"{folder}/{p.name}" for p in sorted((photos_dir / folder).glob("*.jpg"))[:n]}
    rows = []
    for rel in sorted(picked):
        t = truth[rel]
        rows.append(
            _crawl_row(rel.replace("/", "__")[:-4], catalog.resolve(t["species"]), str(photos_dir / rel), t["sha256"])
        )
        rows[-1]["license"] = t["license"]
    broken = work / "raw" / "Boletus_edulis"
    broken.mkdir(parents=True)
    (broken / "cookie_wall.jpg").write_bytes(b"<html><body>accept cookies</body></html>")
    data = (photos_dir / "Boletus_edulis" / "seed_1.jpg").read_bytes()
    (broken / "cut.jpg").write_bytes(data[: len(data) // 3])
    for name in ("cookie_wall.jpg", "cut.jpg"):
        rows.append(_crawl_row(f"broken_{name[:-4]}", "Boletus edulis", f"raw/Boletus_edulis/{name}"))
    Manifest(work).write(rows)


def _stage_cmd(stage: str, work: Path) -> list[str]:
    cmd = [sys.executable, "-m", "data_prep", stage, "--work-dir", str(work)]
    return cmd + (
        ["--workers", "2"] if stage in ("dedup", "normalize") else ["--licences", "all"] if stage == "publish" else []
    )


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_DIR), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def _run_stage(stage: str, work: Path, kill_when=None) -> tuple[bool, float]:
    """Run a stage in its own process group; SIGKILL the whole group once ``kill_when(seconds)`` is true.

    Returns (finished by itself, seconds). The group kill takes the pool workers too, as a crash of
    the machine or an OOM kill of the job would.
    """
    log_path = work.parent / f"{work.name}.{stage}.log"
    t0 = time.perf_counter()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            _stage_cmd(stage, work), cwd=REPO_DIR, env=_env(), stdout=log, stderr=log, start_new_session=True
        )
        killed = False
        while proc.poll() is None:
            elapsed = time.perf_counter() - t0
            if (kill_when is not None and kill_when(elapsed)) or elapsed > 300:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
                break
            time.sleep(0.005)
    if killed:
        deadline = time.time() + 10
        while time.time() < deadline:  # the group is gone once its last worker is reaped
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
    seconds = time.perf_counter() - t0
    assert seconds < 300, f"{stage} hung"
    if not killed:
        assert proc.returncode == 0, log_path.read_text()[-3000:]
    return not killed, seconds


JOURNALS = {"dedup": "cache/phash.jsonl", "normalize": "cache/normalize.jsonl"}


def _journal_lines(stage: str, work: Path) -> int:
    path = work / JOURNALS[stage]
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def _kill_points(stage: str, states: dict, seconds: dict, rng: random.Random) -> list:
    """``kill_when`` conditions at random points of the stage's real work (not only during imports)."""
    if stage in JOURNALS:  # after a random number of journaled images, increasing
        total = _journal_lines(stage, states[stage])
        targets = sorted(rng.sample(range(1, total), KILLS))
        return [lambda t, n=n: _journal_lines(stage, WORK[0]) >= n for n in targets]
    if stage == "publish":  # a random moment after the half-built folder appears
        points = []
        for _ in range(KILLS):
            extra, seen, before = rng.uniform(0.0, 0.8), [], []

            def when(t, extra=extra, seen=seen, before=before):
                staging = set(WORK[0].glob(".dataset.staging-*"))
                if not before:
                    before.append(staging)  # left by an earlier killed run
                if not seen and staging - before[0]:
                    seen.append(t)
                return bool(seen) and t >= seen[0] + extra

            points.append(when)
        return points
    delays = [rng.uniform(0.3, 1.0) * seconds[stage] for _ in range(KILLS)]
    return [lambda t, d=d: t >= d for d in delays]


WORK: list[Path] = [Path()]  # the folder the kill conditions watch


def _snapshot(work: Path) -> dict[str, str]:
    """sha256 of every file in the work folder except resumable caches, logs of timings and summaries."""
    out = {}
    for p in sorted(work.rglob("*")):
        rel = p.relative_to(work).as_posix()
        if p.is_file() and not rel.startswith(("cache/", "summaries/")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _assert_manifest_matches_disk(work: Path) -> None:
    import pyarrow.parquet as pq

    rows = Manifest(work).rows()
    on_disk = {p.relative_to(work).as_posix() for p in (work / "images").rglob("*") if p.is_file()}
    listed = {r["path"] for r in rows if r["path"]}
    assert all(r["status"] == "ok" for r in rows if r["path"])
    assert on_disk == listed, (f"not in manifest: {sorted(on_disk - listed)[:5]}", sorted(listed - on_disk)[:5])
    for r in rows:
        if r["path"]:
            assert hashlib.sha256((work / r["path"]).read_bytes()).hexdigest() == r["sha256"], r["path"]
    assert len({r["image_id"] for r in rows}) == len(rows)  # nothing duplicated
    leftovers = [p for p in work.rglob("*") if p.name.endswith(".tmp") or ".staging-" in p.name or ".old-" in p.name]
    assert not leftovers, leftovers
    if (work / "dataset").is_dir():
        published = {r["sha256"] for r in rows if r["split"]}
        in_parquet = []
        for f in sorted((work / "dataset" / "data").glob("*.parquet")):
            in_parquet += pq.read_table(f, columns=["sha256"]).column("sha256").to_pylist()
        assert sorted(in_parquet) == sorted(published)


@pytest.fixture(scope="module")
def reference_chain(tmp_path_factory, photos_dir, photo_manifest):
    """The uninterrupted chain: one folder per finished stage, and each stage's wall time."""
    root = tmp_path_factory.mktemp("chain")
    states = {"crawl": root / "crawl"}
    _crawled_work_dir(states["crawl"], photos_dir, photo_manifest)
    seconds = {}
    for stage in KILL_STAGES:
        states[stage] = root / stage
        shutil.copytree(states[BEFORE[stage]], states[stage])
        finished, seconds[stage] = _run_stage(stage, states[stage])
        assert finished
    print("uninterrupted stage times (s):", {k: round(v, 1) for k, v in seconds.items()})
    return states, seconds


def _progress(stage: str, work: Path) -> str:
    lines = _journal_lines(stage, work) if stage in JOURNALS else 0
    temps = [p.name for p in work.rglob("*") if p.name.endswith(".tmp") or ".staging-" in p.name]
    manifest = hashlib.sha256((work / "manifest.csv").read_bytes()).hexdigest()[:8]
    return f"journal {lines} lines, temp files/dirs left {len(temps)}, manifest {manifest}"


@pytest.mark.slow
@pytest.mark.parametrize("stage", KILL_STAGES)
def test_stage_killed_at_random_points_then_rerun_equals_uninterrupted(stage, reference_chain, tmp_path):
    states, seconds = reference_chain
    work = tmp_path / "work"
    shutil.copytree(states[BEFORE[stage]], work)
    rng = random.Random(f"{KILL_SEED}-{stage}")
    WORK[0] = work
    landed = []
    for kill_when in _kill_points(stage, states, seconds, rng):
        finished, t = _run_stage(stage, work, kill_when)
        landed.append(f"{'finished' if finished else 'killed'} at {t:.2f}s ({_progress(stage, work)})")
    finished, _ = _run_stage(stage, work)
    print(f"{stage} (seed {KILL_SEED}):", "; ".join(landed))
    assert finished
    expected = _snapshot(states[stage])
    got = _snapshot(work)
    assert got.keys() == expected.keys(), (sorted(got.keys() - expected.keys()), sorted(expected.keys() - got.keys()))
    differ = [k for k in got if got[k] != expected[k]]
    assert not differ, f"files differ from the uninterrupted run (seed {KILL_SEED}): {differ[:5]}"
    _assert_manifest_matches_disk(work)
    _assert_manifest_matches_disk(states[stage])


def test_leftovers_of_a_killed_run_are_removed_by_the_rerun(reference_chain, tmp_path):
    """What a SIGKILL inside an atomic write or a publish leaves behind is gone after the rerun."""
    states, _ = reference_chain
    work = tmp_path / "work"
    shutil.copytree(states["publish"], work)
    expected = _snapshot(states["publish"])
    species_dir = next(p for p in (work / "images").iterdir() if p.is_dir())
    (species_dir / ".abc.jpg.k3j2h1.tmp").write_bytes(b"\xff\xd8\xff\xe0 half a jpeg")
    (work / ".manifest.csv.x8a7b6.tmp").write_text("image_id,species\n")
    dead_pid = 4_194_305  # above Linux's pid_max: no such process
    for kind in ("staging", "old"):
        (work / f".dataset.{kind}-{dead_pid}" / "data").mkdir(parents=True)
        (work / f".dataset.{kind}-{dead_pid}" / "data" / ".train-00000.parquet.tmp").write_bytes(b"PAR1")
    for stage in ("normalize", "split", "publish"):
        more = ["--licences", "all"] if stage == "publish" else []  # as the reference chain published
        assert data_prep_main([stage, "--work-dir", str(work), "--workers", "1", *more]) == 0
    assert _snapshot(work) == expected
    _assert_manifest_matches_disk(work)


# ---------------------------------------------------------------- models and tokens


def test_model_label_not_in_catalog_is_marked_unknown(tmp_path, photo_of):
    """Decision: a model may carry labels the catalog does not know; they are never shown as edible:
    edibility 'unknown', with the unknown-edibility warning, and no lookalikes invented."""
    import timm
    import torch

    from mushroom_id.core.models import load_model, save_model
    from mushroom_id.core.safety import EDIBILITY_TEXT
    from mushroom_id.serving.predictor import Predictor

    made_up = "Fungus imaginarius"
    assert made_up not in default_catalog()
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    with torch.no_grad():  # whatever the photo, the made-up label wins
        model.get_classifier().weight.zero_()
        model.get_classifier().bias.copy_(torch.tensor([6.0, 0.0, 0.0]))
    labels = [made_up, "Boletus edulis", "Amanita phalloides"]
    folder = save_model(model, tmp_path / "odd_labels", labels, extra={"model_id": "odd-labels"})
    predictor = Predictor(load_model(f"local-dir:{folder}"), use_gate=False)
    result = predictor.predict(photo_of("Boletus edulis", "seed"))
    top = result["candidates"][0]
    assert top["species"] == made_up and top["probability"] > 0.9
    assert top["edibility"] == "unknown" and top["edibility_text"] == EDIBILITY_TEXT["unknown"]
    assert top["lookalikes"] == [] and top["common_name"] == ""
    unknown = [w for w in result["warnings"] if w["kind"] == "unknown_edibility"]
    assert unknown and unknown[0]["species"] == made_up and "not in our species catalog" in unknown[0]["message"]
    others = {c["species"]: c["edibility"] for c in result["candidates"][1:]}
    assert others == {"Boletus edulis": "edible", "Amanita phalloides": "deadly"}
    assert any(w["kind"] == "toxic_candidate" and w["species"] == "Amanita phalloides" for w in result["warnings"])


class _FakeHub(http.server.BaseHTTPRequestHandler):
    """A stand-in for huggingface.co that refuses every request, as the Hub does a bad token.

    ``echo``: the error body repeats the Authorization header (a hostile or buggy server)."""

    echo = False
    seen: list[str] = []

    def _refuse(self):
        _FakeHub.seen.append(self.headers.get("Authorization", ""))
        if int(self.headers.get("Content-Length") or 0):
            self.rfile.read(int(self.headers["Content-Length"]))
        error = f"Invalid credentials {self.headers.get('Authorization')}" if self.echo else "Invalid credentials"
        body = json.dumps({"error": error}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Message", error)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = _refuse

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_hub():
    def start(echo: bool = False) -> str:
        _FakeHub.echo, _FakeHub.seen = echo, []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    servers: list = []
    yield start
    for s in servers:
        s.shutdown()


def _hub_env(endpoint: str, tmp_path: Path) -> dict:
    return {
        **_env(),
        "HF_TOKEN": FAKE_TOKEN,
        "HF_ENDPOINT": endpoint,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_DEBUG": "1",  # huggingface_hub's most verbose logging, request by request
    }


def test_hub_token_is_never_printed_by_model_loading(fake_hub, tmp_path, photo_of):
    """`python -m mushroom_id predict --model hf-hub:...` with HF_TOKEN set and the Hub refusing:
    a clear error, the token sent to the Hub, and nowhere in stdout or stderr (even with DEBUG logs).
    (A server that echoes the token back would show it in httpcore's own DEBUG header log; our
    message redacts it either way, see test_model_load_error_redacts_an_echoed_token.)"""
    endpoint = fake_hub()
    code = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG)\n"
        "from mushroom_id.__main__ import main\n"
        f"sys.exit(main(['predict', {str(photo_of('Boletus edulis', 'seed'))!r}, '--model', 'hf-hub:acme/mush']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_DIR,
        env=_hub_env(endpoint, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "error: could not fetch hf-hub:acme/mush from the Hugging Face Hub" in output
    assert f"Bearer {FAKE_TOKEN}" in _FakeHub.seen  # read from the environment and used
    assert FAKE_TOKEN not in output
    assert FAKE_TOKEN[3:12] not in output  # not even partly


def test_hub_token_is_never_printed_by_the_app_or_load_model(fake_hub, monkeypatch, caplog, capsys):
    """In-process: load_model's exception and the app's log line for a model it cannot offer."""
    import huggingface_hub.constants as hub_constants

    from mushroom_id.core.models import ModelLoadError, load_model
    from mushroom_id.serving.ui import Service

    monkeypatch.setattr(hub_constants, "ENDPOINT", fake_hub())
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level("DEBUG")
    with pytest.raises(ModelLoadError) as err:
        load_model("hf-hub:acme/mush")
    assert "401" in str(err.value)
    chain, e = [], err.value
    while e is not None:
        chain.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    service = Service(specs=["embedded", "hf-hub:acme/other"])
    assert "hf-hub:acme/other" in service.failed
    assert f"Bearer {FAKE_TOKEN}" in _FakeHub.seen
    out = capsys.readouterr()
    for text in (*chain, caplog.text, out.out, out.err, json.dumps(service.failed)):
        assert FAKE_TOKEN not in text


@pytest.mark.parametrize("echo", [False, True], ids=["hub-refuses", "server-echoes-token"])
def test_hub_token_is_never_printed_by_publish(reference_chain, fake_hub, tmp_path, echo):
    """`python -m data_prep publish --push-to-hub` with HF_TOKEN: the token is checked first, and its
    refusal is a clear failure before anything is built, no token shown, even from a server that puts
    the token into its error message."""
    states, _ = reference_chain
    work = tmp_path / "work"
    shutil.copytree(states["split"], work)
    proc = subprocess.run(
        [*_stage_cmd("publish", work), "--push-to-hub", "acme/mushrooms"],
        cwd=REPO_DIR,
        env=_hub_env(fake_hub(echo), tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "rejected the token (HTTP 401)" in output and "HF_TOKEN" in output
    assert f"Bearer {FAKE_TOKEN}" in _FakeHub.seen
    assert FAKE_TOKEN not in output
    assert not (work / "dataset").exists()  # checked before the build: nothing was built


# ---------------------------------------------------------------- training: killed, resumed, corrupt


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "--model",
        "test_efficientnet",
        "--pretrained",
        "none",
        "--img-size",
        "48",
        "--data",
        str(data),
        "--output-dir",
        str(out),
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--lr",
        "0.01",
        "--warmup-epochs",
        "0.5",
        "--auto-augment",
        "none",
        "--color-jitter",
        "0",
        "--seed",
        "0",
        *extra,
    ]


@pytest.fixture(scope="module")
def killed_training(tmp_path_factory, photos_dir):
    """A tiny training run (3 epochs x 4 steps) SIGKILLed during epoch 2, then resumed with --resume auto."""
    from test_train_fixtures import write_hub_dataset

    root = tmp_path_factory.mktemp("train")
    data = write_hub_dataset(root / "data", photos_dir)
    out = root / "run"
    env = {**_env(), "PYTHONUNBUFFERED": "1"}
    log_path = root / "killed.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _train_cmd(data, out), cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline:
            if "epoch 1:" in log_path.read_text(errors="replace"):  # printed once epoch_001 is saved
                break
            time.sleep(0.02)
        assert proc.poll() is None, log_path.read_text()[-3000:]  # still running: killed in epoch 2
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_history = (out / "metrics.csv").read_text()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch_001"]
    resumed = subprocess.run(
        _train_cmd(data, out, "--resume", "auto"), cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    return data, out, killed_history, resumed.stdout + resumed.stderr


@pytest.mark.slow
def test_training_killed_after_an_epoch_resumes_at_the_same_step(killed_training):
    _, out, killed_history, log = killed_training
    assert "resumed from" in log and "epoch 1, step 4" in log
    history = json.loads((out / "metrics.json").read_text())
    history = history["history"] if isinstance(history, dict) else history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["step"] for h in history] == [4, 8, 12]  # no step lost or repeated
    assert (out / "metrics.csv").read_text().startswith(killed_history)  # epoch 1 kept as it was
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 12


def _clear_error(stderr: str, folder: str) -> bool:
    """The last line names the broken checkpoint folder and says in words what is wrong with it
    (not a bare "No such file" or "deserializing header" from a library)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    words = r"corrupt|incomplete|damaged|unreadable|broken|cannot|could not"
    return folder in last and re.search(words, last) is not None


@pytest.mark.slow
def test_corrupt_checkpoint_gives_a_clear_error(killed_training, tmp_path):
    data, out, _, _ = killed_training
    bad = tmp_path / "run"
    shutil.copytree(out / "checkpoints" / "epoch_003", bad / "checkpoints" / "epoch_003")
    weights = bad / "checkpoints" / "epoch_003" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short, as a full disk would leave it
    proc = subprocess.run(
        _train_cmd(data, bad, "--epochs", "4", "--resume", "auto"),
        cwd=REPO_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert _clear_error(proc.stderr, "epoch_003"), proc.stderr[-500:]


@pytest.mark.slow
def test_half_written_latest_checkpoint_is_skipped(killed_training, tmp_path):
    """A kill during save_state leaves an incomplete epoch_NNN folder (no COMPLETE marker): resume
    says it skips that folder, by name, and continues from the previous complete one."""
    data, out, _, _ = killed_training
    run = tmp_path / "run"
    shutil.copytree(out / "checkpoints" / "epoch_003", run / "checkpoints" / "epoch_003")
    shutil.copytree(out / "best", run / "best")  # the rest of a real run folder
    (run / "checkpoints" / "epoch_004").mkdir()  # killed right after the folder was made (old, non-atomic save)
    proc = subprocess.run(
        _train_cmd(data, run, "--epochs", "4", "--resume", "auto"),
        cwd=REPO_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-2000:]
    assert "skipping incomplete checkpoint" in log and "epoch_004" in log
    resumed = next(line for line in log.splitlines() if "resumed from" in line)
    assert "epoch_003" in resumed


def test_model_load_error_redacts_an_echoed_token(fake_hub, monkeypatch):
    """Our ModelLoadError never carries the token, even when the server repeats it."""
    import huggingface_hub.constants as hub_constants

    from mushroom_id.core.models import ModelLoadError, load_model

    endpoint = fake_hub(True)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    with pytest.raises(ModelLoadError) as info:
        load_model("hf-hub:acme/mush")
    assert FAKE_TOKEN not in str(info.value) and info.value.__cause__ is None
    assert any(FAKE_TOKEN in seen for seen in _FakeHub.seen), "the stand-in must have been asked (with the token)"
