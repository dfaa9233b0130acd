"""K-shot evaluation in Debian's chromium: the folded section of the Classifier and Detector sub-tabs runs on the
sub-tab's data and settings (the samples, tiny presets) and shows a row per seed, the mean ± std row and the
downloads; another base model clears them; a reload shows the job again, in its sub-tab's section."""

from __future__ import annotations

import re

import pytest
import torch
from playwright.sync_api import expect

from tests.e2e.test_finetune_browser import choose, fill_number, open_finetune, shot
from webapp.finetune_tab import KSHOT_HINT

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


def run_kshot(ui, prefix: str, shots: str, seeds: str) -> None:
    """Open the sub-tab's K-shot section, set K and the seeds, run it and wait for the mean ± std row."""
    ui.locator(f"#{prefix}-kshot").get_by_text("K-shot evaluation").first.click()
    fill_number(ui.locator(f"#{prefix}-kshot-k input"), shots)
    ui.locator(f"#{prefix}-kshot-seeds textarea, #{prefix}-kshot-seeds input").first.fill(seeds)
    ui.locator(f"#{prefix}-kshot-run").click()
    expect(ui.locator(f"#{prefix}-kshot-status")).to_contain_text(re.compile(r"Seed \d of|Succeeded"), timeout=60_000)
    expect(ui.locator(f"#{prefix}-kshot-table")).to_contain_text(re.compile(r"\d\.\d{4} ± \d\.\d{4}"),
                                                                 timeout=120_000)  # the mean ± std row


def test_kshot_of_the_sample_classifier_and_detector_shows_seeds_and_spread(page):
    open_finetune(page, "Classifier")
    page.locator("#finetune-sample").click()
    choose(page, "finetune-preset", "tiny")
    page.get_by_text("Training settings").first.click()
    page.locator("#finetune-method").get_by_text("Linear probe (head only)").click()  # the quickest to train
    fill_number(page.locator("#finetune-steps input"), "5")
    run_kshot(page, "finetune", "3", "0, 1, 2")
    table = page.locator("#finetune-kshot-table")
    for text in ("zero-shot accuracy", "fine-tuned accuracy", "training images"):
        expect(table).to_contain_text(text)
    expect(table.get_by_role("row")).to_have_count(5)  # the headers, three seeds, then mean ± std
    expect(page.locator("#finetune-kshot-status")).to_contain_text("3-shot evaluation of classifiers")
    expect(page.locator("#finetune-kshot-downloads").get_by_role("link")).to_have_count(2)  # kshot.json, kshot.csv
    shot(page, "kshot-classifier")
    choose(page, "finetune-preset", "ViT-B-32")  # another base model: the tiny one's results are not its
    expect(page.locator("#finetune-kshot-status")).to_have_text(KSHOT_HINT)
    expect(table.get_by_role("row")).to_have_count(1)  # the headers only
    expect(page.locator("#finetune-kshot-downloads").get_by_role("link")).to_have_count(0)

    open_finetune(page, "Detector")
    page.locator("#detect-sample").click()
    choose(page, "detect-preset", "tiny")
    page.locator("#detect-settings").get_by_text("Training settings").first.click()
    fill_number(page.locator("#detect-steps input"), "2")
    run_kshot(page, "detect", "2", "0, 1")
    table = page.locator("#detect-kshot-table")
    expect(table).to_contain_text("fine-tuned mAP@[.5:.95]")
    expect(table.get_by_role("row")).to_have_count(4)
    expect(page.locator("#detect-kshot-status")).to_contain_text("K images per class")
    expect(page.locator("#detect-kshot-downloads").get_by_role("link")).to_have_count(2)
    shot(page, "kshot-detector")

    page.reload()  # the job is in the address: its sub-tab and section show it again (a loaded CPU takes seconds)
    expect(page.locator("#detect-kshot-table")).to_contain_text(re.compile(r"\d\.\d{4} ± \d\.\d{4}"),
                                                                timeout=30_000)
    expect(page.locator("#detect-kshot-status")).to_contain_text("Succeeded")
    expect(page.locator("#detect-kshot-table")).to_be_visible()  # the section opened
    # the form it ran with: the sample's annotated images, the tiny base model, 2 steps; K and the seeds
    expect(page.locator("#detect-data")).to_contain_text(re.compile(r"nuts_and_washers_coco\s*\.zip"))
    expect(page.locator("#detect-preset input")).to_have_value(re.compile("tiny"))
    expect(page.locator("#detect-kshot-k input")).to_have_value("2")
    expect(page.locator("#detect-kshot-seeds textarea, #detect-kshot-seeds input").first).to_have_value("0, 1")
    page.locator("#detect-settings").get_by_text("Training settings").first.click()
    expect(page.locator("#detect-steps input")).to_have_value("2")
    shot(page, "kshot-detector-reloaded")
