"""One click, one job: a double click on a run button whose event uploads files starts a single job, the button
is disabled while the tab's job is under way and enabled again when it ends (chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e import test_browser
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_insertion_browser import fill, prepare, upload_picture
from tests.helpers import noise_images

pytestmark = pytest.mark.browser


def job_count(tool: str) -> int:
    from tasks import client

    return sum(job.tool == tool for job in client.list_jobs(1000))


def double_click_starts_one_job(ui, button_id: str, status_id: str, tool: str) -> None:
    before = job_count(tool)
    button = ui.locator(f"#{button_id}")
    button.dblclick()
    expect(button).to_be_disabled(timeout=10_000)
    ui.locator(f"#{status_id}").get_by_text("Succeeded").wait_for(timeout=180_000)
    expect(button).to_be_enabled(timeout=30_000)
    assert job_count(tool) == before + 1
    ARTIFACTS.mkdir(exist_ok=True)
    ui.screenshot(path=str(ARTIFACTS / f"one-click-{tool}.png"), full_page=True)


def test_a_double_click_on_inspect_starts_one_inspection(page, metal_plate_images):
    page.locator("#anomaly-files input[type=file]").set_input_files([str(f) for f in metal_plate_images[:2]])
    page.locator("#anomaly-object textarea, #anomaly-object input").first.fill("metal plate")
    test_browser.choose_preset(page, "WinCLIP · tiny")
    double_click_starts_one_job(page, "anomaly-run", "anomaly-status", "anomaly")


def test_a_double_click_on_insert_starts_one_insertion(page, tmp_path):
    image = noise_images(tmp_path, 1, size=(160, 120))[0]
    upload_picture(page, image)
    fill(page, "insertion-box", "40,30,110,90")
    prepare(page, "insertion", "a red ball")
    double_click_starts_one_job(page, "insertion-run", "insertion-status", "insertion")


def test_a_refused_submission_enables_the_button_again(page):
    button = page.locator("#anomaly-run")
    button.click()  # no images: refused with a message before any job
    expect(page.get_by_text("Upload", exact=False).first).to_be_visible()
    expect(button).to_be_enabled(timeout=30_000)
