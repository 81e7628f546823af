"""`tunix report`'s page in headless Chromium (Debian's /usr/bin/chromium, driven by
playwright): it renders, logs no console error, loads nothing from outside the file, and
shows the before/after table and the flipped items. Only the nox session ``browser`` runs
it (marker ``browser``); the screenshot goes to ``$TUNIX_REPORT_SCREENSHOT``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
# This machine has no network: nothing in the background may try to reach it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
REPO = Path(__file__).resolve().parents[4]
SCREENSHOT = Path(os.environ.get("TUNIX_REPORT_SCREENSHOT", REPO / "build" / "report-screenshot.png"))


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A random tiny-gemma3 exported as a run's ``model/``, and its fingerprint."""
    from tunix_jax.export.writing import write_model_dir
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model("tiny-gemma3", "random")
    directory = tmp_path_factory.mktemp("export") / "model"
    export = write_model_dir(model, tokenizer, preset="tiny-gemma3", weights="random",
                             directory=directory)  # fmt: skip
    return directory, export.fingerprint


def test_the_report_renders_in_chromium_without_console_errors(
    invoke, report_run, tiny_export, tmp_path
):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: the nox session 'browser' installs it"
    model_dir, fingerprint = tiny_export
    run = report_run(tmp_path, model_dir=model_dir, fingerprint=fingerprint)
    assert invoke("report", run.path).exit_code == 0
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
        page.goto(run.report_path.as_uri(), wait_until="load")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        table = page.locator("#before-after table").inner_text()
        flipped = page.locator("#flipped").inner_text()
        cards = page.locator("#flipped article.flip").count()
        scripts = page.locator("script").count()
        context.close()
    print(f"report screenshot: {SCREENSHOT}")

    assert errors == [] and outside == []
    assert "answer_accuracy" in table and "33.3%" in table and "66.7%" in table
    assert cards == 4 and "Fixed: wrong → right (3)" in flipped
    # The completion holding a <script> tag is shown as text, never run.
    assert scripts == 0 and '<script>console.error("unescaped completion")</script>' in flipped
    with Image.open(SCREENSHOT) as image:
        assert image.format == "PNG" and image.width == 1200 and image.height > 2000
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 10, "the screenshot is (nearly) one colour"
