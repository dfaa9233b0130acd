"""The completion tab in Debian's chromium: upload a partly annotated set, complete, see proposals, accept, export."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tasks import client
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import cancel_while_running
from tests.helpers import noise_images

pytestmark = pytest.mark.browser


def one_image_set(shared_data, tmp_path):
    """A DeepPCB image and a COCO file with every other of its boxes."""
    root = shared_data / "detection" / "deeppcb"
    coco = json.loads((root / "annotations.json").read_text())
    image = coco["images"][0]
    partial = tmp_path / "partial.json"
    kept = [a for a in coco["annotations"] if a["image_id"] == image["id"]][::2]
    partial.write_text(json.dumps({"images": [image], "categories": coco["categories"], "annotations": kept}))
    return root / "images" / image["file_name"], partial, len(kept)


def complete(page, image, partial, threshold: str | None = None) -> None:
    page.get_by_role("tab", name="Annotation completion").click()
    if threshold:
        page.locator("#completion-threshold input[type=number]").fill(threshold)
        page.locator("#completion-threshold input[type=number]").press("Enter")
    page.locator("#completion-images input[type=file]").set_input_files([str(image)])
    page.locator("#completion-annotations input[type=file]").set_input_files([str(partial)])
    page.locator("#completion-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#completion-run").click()
    page.locator("#completion-status").get_by_text("Succeeded").wait_for()


def drag(page, canvas,
          start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at `start` and release at `end`, both fractions of the canvas."""
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    for step in range(1, 6):
        t = step / 5
        page.mouse.move(box["x"] + (start[0] + t * (end[0] - start[0])) * box["width"],
                        box["y"] + (start[1] + t * (end[1] - start[1])) * box["height"])
    page.mouse.up()


def name_box(page, name: str) -> None:
    """Type the label the annotator asks for after a box is drawn, and confirm it."""
    modal = page.locator(".modal").filter(has=page.get_by_role("button", name="OK")).first
    modal.locator("input").first.fill(name)
    modal.get_by_role("button", name="OK").click()


def test_complete_review_and_export_in_the_page(page, shared_data, tmp_path):
    image, partial, _ = one_image_set(shared_data, tmp_path)
    complete(page, image, partial)
    expect(page.locator("#completion-page")).to_contain_text(f"Image 1 of 1: {image.name}")
    expect(page.locator("#completion-view canvas")).to_be_visible()
    table = page.locator("#completion-proposals")
    expect(table).to_contain_text("pending")
    counts = page.locator("#completion-counts")
    expect(counts).to_contain_text("0 accepted · 0 rejected")
    expect(page.locator("#completion-shortcuts")).to_contain_text("a accept · r reject · n next proposal")

    page.locator("#completion-accept-all").click()
    expect(table).to_contain_text("accepted")
    expect(counts).to_contain_text(re.compile(r"^\s*(\d+) of \d+ proposals score ≥ 0\.30 · \1 accepted · 0 rejected"))
    page.locator("#completion-export").click()
    exports = page.locator("#completion-exports")
    expect(exports).to_contain_text("accepted_coco")
    expect(exports).to_contain_text("accepted_voc")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "completion-review.png"), full_page=True)


def test_keys_a_box_drawn_and_a_reload_keep_the_review(page, app_url, shared_data, tmp_path):
    """Keyboard accept and reject, a rectangle drawn in the review, all saved as made: a reload with ?job= shows
    them, one counts line says exactly what it counts, and the export has the drawn box."""
    image, partial, kept = one_image_set(shared_data, tmp_path)
    complete(page, image, partial, threshold="0.72")  # few proposals shown: a clean picture
    counts, table = page.locator("#completion-counts"), page.locator("#completion-proposals")
    expect(counts).to_contain_text("proposals score ≥ 0.72 · 0 accepted · 0 rejected")
    first = int(page.locator("#completion-proposal input").input_value())

    page.locator("body").click(position={"x": 5, "y": 5})  # focus outside any text field
    page.keyboard.press("a")
    expect(counts).to_contain_text("· 1 accepted · 0 rejected")
    expect(table.locator("tr", has_text=f"{first}").first).to_contain_text("accepted")
    page.keyboard.press("r")
    expect(counts).to_contain_text("· 1 accepted · 1 rejected")
    selected = page.locator("#completion-proposal input")
    after_reject = selected.input_value()
    page.keyboard.press("n")
    expect(selected).not_to_have_value(after_reject)  # the next pending proposal
    page.locator("#completion-load-id input, #completion-load-id textarea").first.click()
    page.keyboard.press("a")  # typed into the text field: no decision
    expect(counts).to_contain_text("· 1 accepted · 1 rejected")
    page.locator("#completion-load-id input, #completion-load-id textarea").first.fill("0123abcd")
    page.locator("#completion-load").click()  # no such job: told, and the review on screen stays usable
    expect(page.get_by_text("No job 0123abcd.")).to_be_visible()
    for review_part in ("#completion-view", "#completion-proposals", "#completion-counts", "#completion-proposal"):
        expect(page.locator(review_part)).not_to_contain_text("Error")
    page.locator("#completion-images button[aria-label='Clear']").click()
    page.locator("#completion-run").click()  # refused (no images): told, and the review on screen stays usable
    expect(page.get_by_text("Upload images (or a zip of them), or a video.")).to_be_visible()
    expect(counts).to_contain_text("· 1 accepted · 1 rejected")
    for review_part in ("#completion-view", "#completion-proposals", "#completion-counts", "#completion-proposal"):
        expect(page.locator(review_part)).not_to_contain_text("Error")

    canvas = page.locator("#completion-view canvas").first
    page.locator("#completion-view button[aria-label='Create box']").click()
    drag(page, canvas, (0.40, 0.88), (0.46, 0.96))  # inside the picture
    expect(counts).to_contain_text("· 1 box added")  # saved at once, with the image's class
    name_box(page, "drawn part")
    expect(page.locator("#completion-page")).to_contain_text("· 1 added (drawn part)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "completion-review-edited.png"), full_page=True)

    page.reload()  # ?job= holds the job: the review comes back with its decisions
    expect(page.locator("#completion-counts")).to_contain_text("· 1 accepted · 1 rejected · 1 box added",
                                                              timeout=60_000)
    page.locator("#completion-export").click()
    expect(page.locator("#completion-exports")).to_contain_text("accepted_coco")
    link = page.locator("#completion-exports a[href*='accepted_coco']").first
    coco = json.loads(page.request.get(link.get_attribute("href")).text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert len(coco["annotations"]) == kept + 2
    assert [names[a["category_id"]] for a in coco["annotations"]].count("drawn part") == 1

    # the form it was submitted with: image, annotations, threshold, model; one click runs it again
    short = page.url.split("job=")[1][:8]
    expect(page.locator("#completion-images")).to_contain_text(re.compile(rf"{image.stem}\s*{image.suffix}"))
    expect(page.locator("#completion-annotations")).to_contain_text(re.compile(r"partial\s*\.json"))
    expect(page.locator("#completion-threshold input[type=number]")).to_have_value("0.72")
    expect(page.locator("#completion-preset input")).to_have_value(re.compile("tiny"))
    page.screenshot(path=str(ARTIFACTS / "completion-reload-keeps-form.png"), full_page=True)
    page.locator("#completion-run").click()
    status = page.locator("#completion-status")
    expect(status).not_to_contain_text(f"job {short}", timeout=60_000)
    expect(status).to_contain_text("Succeeded", timeout=120_000)
    expect(counts).to_contain_text("proposals score ≥ 0.72 · 0 accepted · 0 rejected")  # the new job's review


def test_cancel_a_running_completion(page, tmp_path):
    images = noise_images(tmp_path / "scene", 150, size=(160, 120))
    coco = {"images": [{"id": 1, "file_name": images[0].name, "width": 160, "height": 120}],
            "categories": [{"id": 1, "name": "speck"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 30, 30]}]}
    (tmp_path / "partial.json").write_text(json.dumps(coco))
    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#completion-annotations input[type=file]").set_input_files([str(tmp_path / "partial.json")])
    page.locator("#completion-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#completion-run").click()
    cancel_while_running(page, "completion-status", "completion-cancel")


def test_a_bad_image_in_the_set_shows_what_went_wrong(page, tmp_path):
    broken = tmp_path / "scene.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature and nothing else
    (tmp_path / "boxes.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "scene.png", "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "speck"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 9, 9]}]}))
    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(broken)])
    page.locator("#completion-annotations input[type=file]").set_input_files([str(tmp_path / "boxes.json")])
    page.locator("#completion-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#completion-run").click()
    status = page.locator("#completion-status")
    status.get_by_text("Failed").wait_for()
    expect(status).to_contain_text("No usable images in the upload (scene.png, boxes.json). scene.png: not an image")


def test_draw_boxes_with_rectangles_and_a_failed_add_keeps_the_picture(page, shared_data):
    image = shared_data / "detection" / "deeppcb" / "images" / "000.png"
    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(image)])
    page.get_by_text("Draw boxes (when there are no annotations").click()
    canvas = page.locator("#completion-editor canvas").first
    expect(canvas).to_be_visible()
    page.locator("#completion-add-box").click()  # nothing drawn yet
    expect(page.locator("#completion-draw-message")).to_contain_text("Nothing is drawn")
    expect(canvas).to_be_visible()  # the picture stays, no error badge over it
    expect(page.locator("#completion-editor")).not_to_contain_text("Error")

    page.locator("#completion-editor button[aria-label='Create box']").click()
    drag(page, canvas, (0.3, 0.3), (0.45, 0.5))
    name_box(page, "speck")
    page.locator("#completion-add-box").click()
    expect(page.locator("#completion-draw-message")).to_contain_text("1 box on 000.png")
    expect(page.locator("#completion-drawn")).to_contain_text("000.png speck: x")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "completion-draw-boxes.png"), full_page=True)

    # a reload keeps the drawn boxes, shown and used: Complete again runs with them
    page.locator("#completion-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#completion-run").click()
    page.locator("#completion-status").get_by_text("Succeeded").wait_for()
    page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{32}"))  # the tab put its job in the address
    first = page.url.split("job=")[1][:32]
    page.reload()
    page.get_by_text("Draw boxes (when there are no annotations").click()
    expect(page.locator("#completion-drawn")).to_contain_text("000.png speck: x")
    page.locator("#completion-threshold input[type=number]").fill("0.5")  # one change: Complete runs again
    page.locator("#completion-threshold input[type=number]").press("Enter")
    page.locator("#completion-run").click()
    page.wait_for_url(re.compile(rf"[?&]job=(?!{first})[0-9a-f]{{32}}"))
    rerun = client.get(page.url.split("job=")[1][:32])
    assert [box["category"] for box in rerun.params["drawn_boxes"]] == ["speck"]


def test_a_reload_reopens_the_image_under_review_and_fits_its_picture(page, app_url):
    """The sample's two trays (320×240): the picture fills the panel's width; the image shown goes in the address,
    and a reload reopens it, with nothing decided by the reload itself; an image number out of range opens the
    first image. On a phone the picture fits the panel."""
    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-sample").click()
    expect(page.get_by_text("Sample loaded").first).to_be_visible()
    page.locator("#completion-run").click()
    page.locator("#completion-status").get_by_text("Succeeded").wait_for()
    line, counts = page.locator("#completion-page"), page.locator("#completion-counts")
    expect(line).to_contain_text("Image 1 of 2: tray_1.jpg")
    canvas = page.locator("#completion-view canvas").first
    assert canvas.bounding_box()["height"] > 600  # 240 pixels high, drawn 640 high and more (the labels' room)

    page.locator("#completion-next").click()
    expect(line).to_contain_text("Image 2 of 2: tray_2.jpg")
    page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{32}&image=2$"))
    page.reload()
    expect(line).to_contain_text("Image 2 of 2: tray_2.jpg", timeout=60_000)
    expect(counts).to_contain_text("· 0 accepted · 0 rejected")
    page.wait_for_timeout(2_000)  # a late change from the first image's picture would land now
    expect(counts).to_contain_text("· 0 accepted · 0 rejected")
    expect(counts).not_to_contain_text("added")

    page.goto(page.url.replace("image=2", "image=99"))
    expect(line).to_contain_text("Image 1 of 2: tray_1.jpg", timeout=60_000)
    page.set_viewport_size({"width": 390, "height": 844})
    panel = page.locator("#completion-view").bounding_box()
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"] + 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "completion-review-phone.png"), full_page=True)
