"""Object insertion in Debian's chromium: upload, mark a box, insert, see the results, for an image and a video."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e import test_browser
from tests.helpers import moving_square_video, noise_images

pytestmark = pytest.mark.browser
ARTIFACTS = test_browser.ARTIFACTS
browser, page = test_browser.browser, test_browser.page  # the same chromium, and a fresh page per test


def fill(ui, elem_id: str, text: str) -> None:
    ui.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def prepare(ui, prefix: str, prompt: str, steps: int | None = 2) -> None:
    """Prompt, the tiny preset, and (unless None) two denoising steps (its results are noise anyway; the CPU
    is shared)."""
    fill(ui, f"{prefix}-prompt", prompt)
    ui.locator(f"#{prefix}-preset input").click()
    ui.get_by_role("option").filter(has_text="tiny").click()
    if steps is None:
        return
    ui.locator(f"#{prefix}-sampling").get_by_text("Sampling").click()
    field = ui.locator(f"#{prefix}-steps input[type=number]")
    field.fill(str(steps))
    field.press("Enter")


def open_insertion(ui, section: str) -> None:
    ui.get_by_role("tab", name="Object insertion").click()
    ui.locator("#insertion-tabs").get_by_role("tab", name=section).click()


def start_video_insertion(ui, video: Path, steps: int | None = 2) -> None:
    """Upload a video, box the object on its anchor frame, prompt, and press Insert into video."""
    open_insertion(ui, "Video")
    ui.locator("#insertion-video-file input[type=file]").set_input_files(str(video))
    ui.locator("#insertion-video-editor img, #insertion-video-editor canvas").first.wait_for()  # the anchor frame
    fill(ui, "insertion-video-box", "20,10,60,50")
    prepare(ui, "insertion-video", "a red ball", steps)
    ui.locator("#insertion-video-run").click()


def test_insertion_into_an_image_shows_a_result_per_seed(page, tmp_path):
    image = noise_images(tmp_path, 1, size=(160, 120))[0]
    open_insertion(page, "Image")
    page.locator("#insertion-editor input[type=file]").set_input_files(str(image))
    fill(page, "insertion-box", "40,30,110,90")
    prepare(page, "insertion", "a red ball")
    page.locator("#insertion-run").click()
    page.locator("#insertion-status").get_by_text("Succeeded").wait_for()
    expect(page.locator("#insertion-gallery img")).to_have_count(2, timeout=30_000)
    expect(page.locator("#insertion-downloads a[href$='summary.json']")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-image-result.png"), full_page=True)


def test_insertion_into_a_video_plays_the_result_and_offers_the_mp4(page, tmp_path: Path):
    moving_square_video(tmp_path / "clip.mp4", frames=4, size=(96, 72))
    start_video_insertion(page, tmp_path / "clip.mp4")
    page.locator("#insertion-video-status").get_by_text("Succeeded").wait_for()
    player = page.locator("#insertion-result-video video")
    player.wait_for()
    assert "result.mp4" in (player.get_attribute("src") or "")
    expect(page.locator("#insertion-video-downloads a[href$='result.mp4']")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-video-result.png"), full_page=True)


def test_cancel_a_running_video_insertion(page, tmp_path: Path):
    moving_square_video(tmp_path / "long.mp4", frames=40, size=(96, 72))
    start_video_insertion(page, tmp_path / "long.mp4", steps=None)  # 40 frames of 20 steps: long enough
    test_browser.cancel_while_running(page, "insertion-video-status", "insertion-video-cancel")
