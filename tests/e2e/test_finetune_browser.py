"""The fine-tuning tab in Debian's chromium: train the tiny preset from a zip, see the curve and the metrics."""

from __future__ import annotations

import pytest
import torch

from tests.e2e.test_browser import ARTIFACTS, browser, page  # noqa: F401 - shared fixtures
from tests.helpers import colour_classes, shape_detection_set, zip_tree

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


def fill_number(field, value: str) -> None:
    """Fill a number input, again if its component was still mounting when the accordion opened (gradio then
    sets its initial value over the one typed)."""
    for _ in range(20):
        field.fill(value)
        field.page.wait_for_timeout(200)
        if field.input_value() == value:
            return
    raise AssertionError(f"the field keeps {field.input_value()!r}, not {value!r}")


def start_classifier_training(ui, tmp_path, name: str, steps: int | None = None) -> None:
    """Colour classes as a zip, the tiny preset, a model name (and a number of steps), then Train."""
    archive = zip_tree(colour_classes(tmp_path / "set"), tmp_path / "colours.zip")
    ui.get_by_role("tab", name="Few-shot fine-tuning").click()
    ui.locator("#finetune-zip input[type=file]").set_input_files([str(archive)])
    ui.locator("#finetune-name textarea, #finetune-name input").first.fill(name)
    ui.locator("#finetune-preset input").click()
    ui.get_by_role("option").filter(has_text="tiny").click()
    if steps is not None:
        ui.get_by_text("Training settings").first.click()
        fill_number(ui.locator("#finetune-steps input"), str(steps))
    ui.locator("#finetune-train").click()


def test_train_the_tiny_preset_and_see_the_curve_and_metrics(page, tmp_path):  # noqa: F811
    start_classifier_training(page, tmp_path, "browser colours")
    page.locator("#finetune-status").get_by_text("Succeeded").wait_for()
    assert "Model browser colours saved" in page.locator("#finetune-status").inner_text()
    page.locator("#finetune-curves canvas, #finetune-curves svg").first.wait_for()
    metrics = page.locator("#finetune-metrics")
    assert metrics.get_by_text("all", exact=True).count() >= 1 and metrics.get_by_text("red").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finetune-result.png"), full_page=True)


def test_train_a_detector_see_curves_and_ap_detect_download_upload_and_complete(page, tmp_path):  # noqa: F811
    root = shape_detection_set(tmp_path / "set", count=12)
    archive = zip_tree(root, tmp_path / "shapes.zip")
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    page.locator("#detect-data input[type=file]").set_input_files([str(archive)])
    page.locator("#detect-name textarea, #detect-name input").first.fill("browser shapes")
    page.locator("#detect-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#detect-settings").get_by_text("Training settings").click()
    fill_number(page.locator("#detect-steps input"), "40")
    page.locator("#detect-train").click()
    page.locator("#detect-status").get_by_text("Succeeded").wait_for()
    assert "Model browser shapes saved" in page.locator("#detect-status").inner_text()
    for plot in ("#detect-loss", "#detect-map"):
        page.locator(f"{plot} canvas, {plot} svg").first.wait_for()
    metrics = page.locator("#detect-metrics")
    assert metrics.get_by_text("all (mAP)").count() >= 1 and metrics.get_by_text("circle").count() >= 1

    page.locator("#finetune-model input").click()
    page.get_by_role("option").filter(has_text="browser shapes").click()
    images = sorted((root / "images").glob("*.png"))[:2]
    page.locator("#finetune-use-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#finetune-threshold input[type=number]").fill("0.3")
    page.locator("#finetune-detect-boxes").click()
    page.locator("#finetune-use-status").get_by_text("Succeeded").wait_for()
    page.locator("#finetune-boxes img").nth(1).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finetune-detection-result.png"), full_page=True)

    page.locator("#finetune-download").click()
    link = page.locator("#finetune-model-file a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "browser shapes.zip"
    download.value.save_as(saved)
    page.locator("#finetune-upload-name textarea, #finetune-upload-name input").first.fill("browser shapes copy")
    page.locator("#finetune-upload-file input[type=file]").set_input_files(str(saved))
    page.locator("#finetune-upload").click()
    page.locator("#finetune-model-status").get_by_text("Uploaded model").wait_for()
    assert "browser shapes copy" in page.locator("#finetune-model-status").inner_text()

    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#completion-refresh-models").click()
    page.locator("#completion-preset input").click()
    page.get_by_role("option", name="Fine-tuned detector · browser shapes (square, circle)").click()
    page.locator("#completion-run").click()
    page.locator("#completion-status").get_by_text("Succeeded").wait_for()
    assert "fine-tuned detector browser shapes" in page.locator("#completion-status").inner_text()


def test_cancel_training_keeps_the_best_checkpoint(page, tmp_path):  # noqa: F811
    start_classifier_training(page, tmp_path, "cancelled colours", steps=100_000)
    status = page.locator("#finetune-status")
    status.get_by_text("Running").wait_for()
    page.locator("#finetune-curves canvas, #finetune-curves svg").first.wait_for()  # some steps are done
    page.locator("#finetune-cancel").click()
    status.get_by_text("Succeeded").wait_for()
    assert "Model cancelled colours saved" in status.inner_text() and "stopped: cancelled" in status.inner_text()
