"""The completion tab in Debian's chromium: upload a partly annotated set, complete, see proposals, accept, export."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import ARTIFACTS, browser, cancel_while_running, page  # noqa: F401 - shared fixtures
from tests.helpers import noise_images

pytestmark = pytest.mark.browser


def test_complete_review_and_export_in_the_page(page, shared_data, tmp_path):  # noqa: F811
    root = shared_data / "detection" / "deeppcb"
    coco = json.loads((root / "annotations.json").read_text())
    image = coco["images"][0]
    partial = tmp_path / "partial.json"
    kept = [a for a in coco["annotations"] if a["image_id"] == image["id"]][::2]
    partial.write_text(json.dumps({"images": [image], "categories": coco["categories"], "annotations": kept}))

    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(root / "images" / image["file_name"])])
    page.locator("#completion-annotations input[type=file]").set_input_files([str(partial)])
    page.locator("#completion-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#completion-run").click()

    page.locator("#completion-status").get_by_text("Succeeded").wait_for()
    expect(page.locator("#completion-page")).to_contain_text(f"Image 1 of 1: {image['file_name']}")
    expect(page.locator("#completion-view img")).to_be_visible()
    table = page.locator("#completion-proposals")
    expect(table).to_contain_text("pending")
    expect(page.locator("#completion-counts")).to_contain_text("accepted 0")

    page.locator("#completion-accept-all").click()
    expect(table).to_contain_text("accepted")
    expect(page.locator("#completion-counts")).not_to_contain_text("accepted 0")
    page.locator("#completion-export").click()
    exports = page.locator("#completion-exports")
    expect(exports).to_contain_text("accepted_coco")
    expect(exports).to_contain_text("accepted_voc")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "completion-review.png"), full_page=True)


def test_cancel_a_running_completion(page, tmp_path):  # noqa: F811
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


def test_a_bad_image_in_the_set_shows_what_went_wrong(page, tmp_path):  # noqa: F811
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
