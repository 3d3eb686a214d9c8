"""The app in a real browser: Debian's Chromium driven by Playwright (no `playwright install`).

Screenshots go to $PYTEST_ARTIFACTS (default tests/artifacts/, gitignored).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from mushroom_id.paths import REPO_DIR
from mushroom_id.safety import BANNED_PHRASES, DISCLAIMER, EDIBILITY_TEXT

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 60_000


def _require(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI=true: failing instead of skipping)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("PYTEST_ARTIFACTS") or REPO_DIR / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def service():
    from mushroom_id.ui import Service

    return Service()


@pytest.fixture(scope="module")
def app(service, photos_dir):
    from mushroom_id.ui import build_demo, launch

    demo = build_demo(service=service)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = launch(demo, prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright is not installed (pip install playwright)")
    _require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app)
    page.locator("#disclaimer").wait_for(state="visible")
    try:
        yield page
    finally:
        context.close()


def assert_never_safe(page) -> None:
    text = page.content().lower()
    for phrase in BANNED_PHRASES:
        assert phrase not in text


def test_upload_shows_species_badge_and_warning(page, service, photo_of, artifacts):
    photo = photo_of("Amanita phalloides", "seed")
    expected = service.predictor(None).predict(photo)  # what the page must show
    top = expected["candidates"][0]
    toxic = [w for w in expected["warnings"] if w["kind"] == "toxic_candidate"]
    assert toxic, "the death cap photo must raise a toxic warning"

    assert DISCLAIMER[:60] in page.locator("#disclaimer").inner_text()
    page.locator('input[type="file"]').first.set_input_files(str(photo))

    first_badge = page.locator("#candidates .badge").first
    first_badge.wait_for(state="visible")
    assert first_badge.inner_text().strip() == EDIBILITY_TEXT[top["edibility"]]
    assert top["species"] in page.locator("#candidates").inner_text()
    page.locator("#top5").get_by_text(top["species"]).first.wait_for(state="visible")
    danger = page.locator("#danger-warnings")
    assert danger.is_visible()
    assert "WARNING" in danger.inner_text()
    assert toxic[0]["message"] in danger.inner_text()
    assert page.locator("#disclaimer").is_visible()  # still there next to the answer
    assert_never_safe(page)
    page.screenshot(path=str(artifacts / "browser_one_photo.png"), full_page=True)


def test_observation_tab(page, service, photo_of, artifacts):
    photos = [photo_of("Amanita muscaria", "seed"), photo_of("Amanita muscaria", "inat")]
    expected = service.predictor(None).predict_observation(photos)
    page.get_by_role("tab", name="Several photos of one specimen").click()
    page.locator("#observation-photos input[type=file]").set_input_files([str(p) for p in photos])
    page.locator("#identify-specimen").click()
    page.locator("#candidates .badge").first.wait_for(state="visible")
    panel = page.locator("#candidates-panel").inner_text()
    assert "2 photo(s)" in panel
    assert expected["candidates"][0]["species"] in panel
    page.screenshot(path=str(artifacts / "browser_observation.png"), full_page=True)


def test_non_image_shows_clear_error(page, tmp_path, artifacts):
    bad = tmp_path / "notes.jpg"
    bad.write_text("a shopping list, not a photo")
    page.locator('input[type="file"]').first.set_input_files(str(bad))
    page.get_by_text("notes.jpg is not an image file").first.wait_for(state="visible")
    assert page.locator("#candidates .badge").count() == 0
    page.wait_for_timeout(600)  # let the error toast finish fading in for the screenshot
    page.screenshot(path=str(artifacts / "browser_not_an_image.png"), full_page=True)


def test_species_table_search(page, artifacts):
    page.get_by_text("catalog species and their edibility").first.click()
    page.locator("#species-search textarea, #species-search input").first.fill("phalloides")
    table = page.locator("#species-table")
    table.get_by_text("Amanita phalloides").first.wait_for(state="visible")
    assert EDIBILITY_TEXT["deadly"] in table.inner_text()
    page.screenshot(path=str(artifacts / "browser_species_table.png"), full_page=True)
