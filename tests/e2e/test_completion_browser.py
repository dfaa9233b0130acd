"""The completion tab in Debian's chromium: upload a partly annotated set, complete, see proposals, accept, export."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import ARTIFACTS, browser, page  # noqa: F401 - shared fixtures

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
