"""The method choice in Debian's chromium: the Method radio and the model list stay in step, MuSc inspects a batch
against itself, and the evaluation compares three methods in one table and one ROC plot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_anomaly_results import evaluate_kolektor
from tests.e2e.test_browser import choose_preset

pytestmark = pytest.mark.browser
JOB_TIMEOUT = 240_000  # ms: jobs share two slow CPUs with other test runs


def preset_field(page):
    return page.locator("#anomaly-preset input").first


def test_the_method_radio_and_the_model_list_follow_each_other(page, metal_plate_images):
    choose_preset(page, "WinCLIP · tiny")
    page.locator("#anomaly-method").get_by_text("MuSc", exact=True).click()
    expect(preset_field(page)).to_have_value(re.compile("^MuSc · tiny"))  # a demo stays a demo
    choose_preset(page, "AnomalyDINO · tiny")
    expect(page.locator("#anomaly-method input[value=anomalydino]")).to_be_checked()
    page.locator("#anomaly-files input[type=file]").set_input_files([str(p) for p in metal_plate_images[:5]])
    page.locator("#anomaly-run").click()  # no good parts: refused on the page, no job started
    expect(page.get_by_text("AnomalyDINO compares with good parts: add at least one image").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "anomaly-dino-no-good-parts.png"))
    expect(page.locator("#anomaly-status")).not_to_contain_text("Failed")

    page.locator("#anomaly-method").get_by_text("MuSc", exact=True).click()
    expect(preset_field(page)).to_have_value(re.compile("^MuSc · tiny"))  # the model follows (a loaded CPU: seconds)
    page.locator("#anomaly-run").click()  # the same 5 images
    status = page.locator("#anomaly-status")
    status.get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    expect(status).to_contain_text("MuSc (zero-shot over the set)")
    expect(status).to_contain_text("(from the set's own spread; outline above")
    downloads = page.locator("#anomaly-downloads")
    expect(downloads).to_contain_text("Downloads (scores.csv, scores.json, 16-bit maps)")  # what an image run has
    expect(downloads).not_to_contain_text("overlay video")
    expect(page.locator("#anomaly-gallery img")).to_have_count(5)
    page.screenshot(path=str(ARTIFACTS / "anomaly-musc.png"), full_page=True)


def test_the_evaluation_compares_methods(page, shared_data, tmp_path):
    evaluate_kolektor(page, shared_data, tmp_path, shots=1, compare=("MuSc · tiny", "AnomalyDINO · tiny"))
    table = page.locator("#eval-comparison")
    for run in ("WinCLIP+ 1-shot · winclip-tiny", "MuSc 1-shot · musc-tiny", "AnomalyDINO 1-shot · anomalydino-tiny"):
        expect(table).to_contain_text(run)
    expect(page.locator("#eval-roc img")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#eval-roc").screenshot(path=str(ARTIFACTS / "anomaly-roc-compared.png"))
    page.screenshot(path=str(ARTIFACTS / "anomaly-evaluation-compared.png"), full_page=True)
