"""Object insertion in Debian's chromium: upload, mark a box, insert, see the results, for an image and a video."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e import test_browser
from tests.e2e.conftest import ARTIFACTS
from tests.helpers import moving_square_video, noise_images

pytestmark = pytest.mark.browser


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
    for _ in range(3):  # on a loaded CPU the page sometimes puts the default back just after a fill: fill again
        field.fill(str(steps))
        field.press("Enter")
        try:
            expect(field).to_have_value(str(steps), timeout=5_000)
            return
        except AssertionError:
            continue
    expect(field).to_have_value(str(steps))


def expect_form(ui, prefix: str, job_id: str) -> None:
    """The section shows the box, prompt, model and steps the job was submitted with (after a reload: the
    Sampling accordion is closed)."""
    from tasks import client

    params = client.get(job_id).params
    box = "insertion-video-box" if prefix == "insertion-video" else "insertion-box"
    expect(ui.locator(f"#{box} textarea, #{box} input").first).to_have_value("20,10,60,50")
    expect(ui.locator(f"#{prefix}-prompt textarea, #{prefix}-prompt input").first).to_have_value(params["prompt"])
    expect(ui.locator(f"#{prefix}-preset input")).to_have_value(re.compile("tiny"))
    ui.locator(f"#{prefix}-sampling").get_by_text("Sampling").click()
    expect(ui.locator(f"#{prefix}-steps input[type=number]")).to_have_value(str(params["steps"]))


def open_insertion(ui, section: str) -> None:
    ui.get_by_role("tab", name="Object insertion").click()
    ui.locator("#insertion-tabs").get_by_role("tab", name=section).click()


def upload_picture(ui, image: Path) -> None:
    """Open the Image section and upload `image` into its editor; wait until the editor shows it (on a loaded CPU
    an Insert pressed before that is refused: no image)."""
    open_insertion(ui, "Image")
    editor = ui.locator("#insertion-editor")
    editor.locator("canvas").first.wait_for()  # the editor has started (an upload before that is lost)
    for _ in range(3):  # on a loaded CPU the editor can still drop the first upload (its layers not yet made): again
        editor.locator("input[type=file]").set_input_files(str(image))
        try:
            expect(editor).not_to_contain_text("Upload an image", timeout=15_000)
            return
        except AssertionError:
            continue
    expect(editor).not_to_contain_text("Upload an image")


def start_video_insertion(ui, video: Path, steps: int | None = 2) -> None:
    """Upload a video, box the object on its anchor frame, prompt, and press Insert into video."""
    open_insertion(ui, "Video")
    ui.locator("#insertion-video-file input[type=file]").set_input_files(str(video))
    ui.locator("#insertion-video-editor img, #insertion-video-editor canvas").first.wait_for()  # the anchor frame
    fill(ui, "insertion-video-box", "20,10,60,50")
    prepare(ui, "insertion-video", "a red ball", steps)
    ui.locator("#insertion-video-run").click()


def picture_left_alone_while_a_job_streams(ui, image: Path) -> None:
    """A picture put in the Image section's editor is not sent again while the page follows a running job: the tab
    chosen from the address was set by an update of the gr.Tabs, and Gradio 6.31 then asked every component in them
    for its value at each of the stream's status messages (several a second); the editor answered by uploading its
    picture each time, hundreds of requests a second with the video section's."""
    sent = []
    ui.on("request", lambda request: sent.append(request.post_data_buffer or b"")
          if request.url.endswith("/gradio_api/upload") else None)
    upload_picture(ui, image)
    sent.clear()
    ui.wait_for_timeout(5_000)  # the job runs on (its Cancel, next, says "Cancelled")
    assert not [body for body in sent if len(body) > image.stat().st_size // 2]  # not the picture (the frame: small)


def test_insertion_into_an_image_shows_a_result_per_seed(page, tmp_path):
    image = noise_images(tmp_path, 1, size=(160, 120))[0]
    upload_picture(page, image)
    fill(page, "insertion-box", "40,30,110,90")
    prepare(page, "insertion", "a red ball")
    page.locator("#insertion-run").click()
    page.locator("#insertion-status").get_by_text("Succeeded").wait_for(timeout=240_000)  # a shared, slow CPU
    expect(page.locator("#insertion-gallery img")).to_have_count(2, timeout=30_000)
    expect(page.locator("#insertion-downloads a[href$='summary.json']")).to_have_count(1)
    slider = page.locator("#insertion-slider")
    expect(slider.locator("img")).to_have_count(2, timeout=60_000)  # before and after
    expect(slider).to_contain_text("seed 0")
    first = page.locator("#insertion-gallery img").first.get_attribute("src")
    assert slider.locator("img").nth(1).get_attribute("src") == first
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-image-result.png"), full_page=True)
    page.locator("#insertion-gallery img").nth(1).click()  # the other seed: the slider compares that one
    expect(slider).to_contain_text("seed 1", timeout=60_000)
    assert slider.locator("img").nth(1).get_attribute("src") != first


def shown_picture(ui, elem_id: str) -> np.ndarray:
    """The pixels of the picture an Image component shows, as served to the page."""
    source = ui.locator(f"#{elem_id} img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(ui.request.get(source).body())).convert("RGB"))


def test_a_typed_box_is_drawn_and_a_bad_one_keeps_the_picture(page, tmp_path):
    Image.new("RGB", (160, 120), (128, 128, 128)).save(tmp_path / "gray.png")
    upload_picture(page, tmp_path / "gray.png")
    picture = page.locator("#insertion-box-picture")
    expect(picture).to_be_hidden()
    field = page.locator("#insertion-box textarea, #insertion-box input").first
    field.fill("40,30,110,90")
    field.press("Enter")
    expect(picture.locator("img")).to_be_visible(timeout=60_000)
    pixels = shown_picture(page, "insertion-box-picture")
    assert pixels.shape == (120, 160, 3)
    assert tuple(pixels[30, 40]) == tuple(pixels[89, 109]) == (0, 190, 255)  # the corners of the box's edge
    inside, outside = pixels[60, 75], pixels[20, 20]
    assert tuple(outside) == (128, 128, 128) and inside[2] > inside[0] + 40  # tinted cyan inside only
    assert tuple(pixels[29, 40]) == tuple(pixels[90, 110]) == (128, 128, 128)  # nothing past the box
    drawn = picture.locator("img").get_attribute("src")
    field.fill("40,30,abc")
    field.press("Enter")  # one event, not a debounced change
    expect(page.locator("#insertion-box-message")).to_have_text(
        "⚠️ Box not drawn: 40,30,abc is not a box. A box is four numbers x0,y0,x1,y1 in pixels, two opposite "
        "corners of a region inside the 160×120 image (x0 < x1, y0 < y1), e.g. 40,30,120,90.", timeout=120_000)
    assert picture.locator("img").get_attribute("src") == drawn  # the picture is kept
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-bad-box.png"), full_page=True)
    field.fill("100,20,150,60")
    field.press("Enter")
    expect(page.locator("#insertion-box-message")).to_have_text("", timeout=120_000)
    expect(picture.locator("img")).not_to_have_attribute("src", drawn, timeout=60_000)
    moved = shown_picture(page, "insertion-box-picture")
    assert tuple(moved[20, 100]) == (0, 190, 255) and tuple(moved[30, 40]) == (128, 128, 128)


def test_insert_with_a_box_the_page_flags_is_refused_with_its_words_and_submits_nothing(page, tmp_path):
    """Its job failed at once, leaving a failed record."""
    from tasks import client

    Image.new("RGB", (160, 120), (128, 128, 128)).save(tmp_path / "gray.png")
    upload_picture(page, tmp_path / "gray.png")
    prepare(page, "insertion", "a red ball", steps=None)
    fill(page, "insertion-box", "300,200,400,300")  # past the 160 x 120 picture
    page.locator("#insertion-box textarea, #insertion-box input").first.press("Enter")
    words = ("300,200,400,300 is not a box. A box is four numbers x0,y0,x1,y1 in pixels, two opposite corners of a "
             "region inside the 160×120 image (x0 < x1, y0 < y1), e.g. 40,30,120,90.")
    expect(page.locator("#insertion-box-message")).to_have_text(f"⚠️ Box not drawn: {words}", timeout=120_000)
    before = len(client.list_jobs(10_000))
    page.locator("#insertion-run").click()
    expect(page.locator(".toast-body")).to_contain_text(words, timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-bad-box-refused.png"), full_page=False)
    expect(page.locator("#insertion-run")).to_be_enabled()  # ready for a corrected box
    expect(page.locator("#insertion-status")).not_to_contain_text("Failed")
    assert len(client.list_jobs(10_000)) == before


def test_insert_with_nothing_drawn_and_no_box_is_refused_and_submits_nothing(page, tmp_path):
    """The editor sends its layer even when nothing was drawn: the job took it as the region and failed at once
    ("The mask is empty"), leaving a failed record."""
    from tasks import client

    Image.new("RGB", (160, 120), (128, 128, 128)).save(tmp_path / "gray.png")
    upload_picture(page, tmp_path / "gray.png")
    prepare(page, "insertion", "a red ball", steps=None)
    before = len(client.list_jobs(10_000))
    page.locator("#insertion-run").click()
    expect(page.locator(".toast-body")).to_contain_text(
        "Mark the region in the image: draw over it, upload a mask, or give a box x0,y0,x1,y1.", timeout=60_000)
    expect(page.locator("#insertion-run")).to_be_enabled()
    assert len(client.list_jobs(10_000)) == before


def test_a_stroke_painted_on_the_picture_is_the_region_the_job_inserts_into(page, tmp_path):
    """No test painted before: the layers the page sends are copied from the editor at the click now, not read by
    the run event itself (see `picture_left_alone_while_a_job_streams`)."""
    from tasks import client

    Image.new("RGB", (160, 120), (128, 128, 128)).save(tmp_path / "gray.png")
    upload_picture(page, tmp_path / "gray.png")
    canvas = page.locator("#insertion-editor canvas").first
    bounds = canvas.bounding_box()
    middle_x, middle_y = bounds["x"] + bounds["width"] / 2, bounds["y"] + bounds["height"] / 2
    page.mouse.move(middle_x - 30, middle_y)
    page.mouse.down()
    page.mouse.move(middle_x + 30, middle_y, steps=12)
    page.mouse.up()
    prepare(page, "insertion", "a red ball", steps=1)
    page.locator("#insertion-run").click()
    page.locator("#insertion-status").get_by_text("Succeeded").wait_for(timeout=240_000)
    job_id = page.url.split("job=")[1][:32]
    assert client.get(job_id).result["painted"]
    mask = np.asarray(Image.open(client.artifact_path(job_id, "mask.png")).convert("L")) > 127
    rows, columns = np.nonzero(mask)
    assert mask.shape == (120, 160) and 0 < mask.mean() < 0.5  # the stroke, not the whole picture
    assert columns.min() < 80 < columns.max() and rows.min() < 60 < rows.max()  # across the middle


def test_a_picture_the_page_cannot_show_is_said_so_and_a_sound_one_is_not(page, tmp_path):
    """Gradio's editor stayed empty without a word for a truncated PNG (and sent no upload event)."""
    whole = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(whole, "PNG")
    (tmp_path / "cut short.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    open_insertion(page, "Image")
    page.locator("#insertion-editor canvas").first.wait_for()  # the editor has started
    page.locator("#insertion-editor input[type=file]").set_input_files(str(tmp_path / "cut short.png"))
    toast = page.locator(".toast-body")
    expect(toast).to_contain_text("cut short.png cannot be shown in the editor: the file is damaged or cut short",
                                  timeout=60_000)
    expect(toast).to_contain_text("Upload it as PNG, JPEG, WEBP or BMP.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-unreadable-picture.png"))
    toast.locator("..").get_by_role("button").first.click()  # closed: a later toast would be a new one
    expect(toast).to_have_count(0)
    upload_picture(page, Path(__file__).resolve().parents[2] / "assets" / "insertion" / "desk.jpg")
    page.wait_for_timeout(2_000)  # the page's own check of the file has answered
    expect(toast).to_have_count(0)


def test_the_results_gallery_offers_no_upload(page):
    """The results gallery is an input of its click (to compare a seed), not a place to drop files."""
    open_insertion(page, "Image")
    expect(page.locator("#insertion-gallery")).to_be_visible()
    expect(page.locator("#insertion-gallery")).not_to_contain_text("Drop Media Here")
    expect(page.locator("#insertion-gallery input[type=file]")).to_have_count(0)


def test_only_the_region_modes_fields_are_shown(page):
    open_insertion(page, "Video")
    fields = {name: page.locator(f"#{elem_id}") for name, elem_id in [
        ("painting", "insertion-video-editor"), ("box", "insertion-video-box"),
        ("keyframes", "insertion-keyframes"), ("masks", "insertion-masks")]}
    for mode, shown in [("Same region on every frame", {"painting", "box"}),
                        ("Boxes interpolated between keyframes", {"box", "keyframes"}),
                        ("One uploaded mask per frame", {"masks"}),
                        ("Same region on every frame", {"painting", "box"})]:
        page.locator("#insertion-region-mode").get_by_role("radio", name=mode).check()
        for name, field in fields.items():
            if name in shown:
                expect(field, f"{name} in mode {mode}").to_be_visible(timeout=60_000)
            else:
                expect(field, f"{name} in mode {mode}").to_be_hidden(timeout=60_000)
        if mode.startswith("Boxes"):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "insertion-region-mode-keyframes.png"), full_page=True)


def test_insertion_into_a_video_plays_the_result_and_offers_the_mp4(page, tmp_path: Path):
    moving_square_video(tmp_path / "clip.mp4", frames=4, size=(96, 72))
    start_video_insertion(page, tmp_path / "clip.mp4")
    page.locator("#insertion-video-status").get_by_text("Succeeded").wait_for(timeout=240_000)  # a shared, slow CPU
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


def test_a_reload_re_attaches_each_section_to_its_job(page, tmp_path: Path):
    """An image job after it ended, and a video job while it runs: a reload shows each in its own section, the
    running one live, and its Cancel still stops it."""
    image = noise_images(tmp_path, 1, size=(96, 72))[0]
    upload_picture(page, image)
    fill(page, "insertion-box", "20,10,60,50")
    prepare(page, "insertion", "a red ball", steps=1)
    page.locator("#insertion-run").click()
    status = page.locator("#insertion-status")
    status.get_by_text("Succeeded").wait_for(timeout=240_000)
    page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{32}"))
    short = page.url.split("job=")[1][:8]
    page.reload()
    expect(status).to_contain_text(f"Succeeded · job {short}", timeout=60_000)  # the Image section, shown
    expect(page.locator("#insertion-gallery img")).to_have_count(2, timeout=30_000)
    expect_form(page, "insertion", page.url.split("job=")[1][:32])  # the form it was submitted with
    expect(page.locator("#insertion-editor img, #insertion-editor canvas").first).to_be_visible()
    expect(page.locator("#insertion-box-picture img")).to_be_visible()  # the box, drawn on the picture
    expect(page.get_by_text("Not restored")).to_have_count(0)  # typed, not painted: nothing to paint again
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "insertion-image-reload-keeps-form.png"), full_page=True)
    # (a run from restored files is checked in the anomaly, completion and fine-tuning reload tests: the same copies)

    moving_square_video(tmp_path / "long.mp4", frames=40, size=(96, 72))
    start_video_insertion(page, tmp_path / "long.mp4", steps=None)  # 40 frames of 20 steps: long enough
    video_status = page.locator("#insertion-video-status")
    video_status.get_by_text("Running").wait_for(timeout=240_000)
    page.wait_for_url(re.compile(rf"[?&]job=(?!{short})[0-9a-f]{{32}}"))
    video_short = page.url.split("job=")[1][:8]
    page.reload()
    expect(video_status).to_contain_text(f"Running · job {video_short}", timeout=60_000)  # the Video section
    expect_form(page, "insertion-video", page.url.split("job=")[1][:32])
    expect(page.locator("#insertion-video-file video")).to_have_count(1)
    expect(page.locator("#insertion-video-box-picture img")).to_be_visible(timeout=60_000)  # on the anchor frame
    page.screenshot(path=str(ARTIFACTS / "insertion-video-reattached.png"), full_page=False)
    expect(page.locator("#insertion-video-run")).to_be_disabled()  # as after its click: no second job by reloading
    picture_left_alone_while_a_job_streams(page, noise_images(tmp_path / "other", 1, size=(400, 300))[0])
    open_insertion(page, "Video")
    test_browser.cancel_while_running(page, "insertion-video-status", "insertion-video-cancel")
    expect(page.locator("#insertion-video-run")).to_be_enabled(timeout=60_000)
