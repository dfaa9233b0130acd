"""The fine-tuning tab in Debian's chromium: train the tiny preset from a zip, see the curve and the metrics."""

from __future__ import annotations

import zipfile

import pytest
import torch

from tests.e2e.test_browser import ARTIFACTS, browser, page  # noqa: F401 - shared fixtures
from tests.helpers import colour_classes

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


def test_train_the_tiny_preset_and_see_the_curve_and_metrics(page, tmp_path):  # noqa: F811
    root = colour_classes(tmp_path / "set")
    archive = tmp_path / "colours.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, path.relative_to(root).as_posix())
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    page.locator("#finetune-zip input[type=file]").set_input_files([str(archive)])
    page.locator("#finetune-name textarea, #finetune-name input").first.fill("browser colours")
    page.locator("#finetune-preset input").click()
    page.get_by_role("option").filter(has_text="tiny").click()
    page.locator("#finetune-train").click()
    page.locator("#finetune-status").get_by_text("Succeeded").wait_for()
    assert "Model browser colours saved" in page.locator("#finetune-status").inner_text()
    page.locator("#finetune-curves canvas, #finetune-curves svg").first.wait_for()
    metrics = page.locator("#finetune-metrics")
    assert metrics.get_by_text("all", exact=True).count() >= 1 and metrics.get_by_text("red").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finetune-result.png"), full_page=True)
