"""First run without weights, in chromium: the real presets say "not installed" in every model list, the tab says
so in plain words before anything is pressed (details folded), and the demo preset clears the notice."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.fake_hub import FakeHub

pytestmark = pytest.mark.browser

# (tab, dropdown, a word of the real preset's label, a word of the demo preset's label)
DROPDOWNS = [
    ("Anomaly segmentation", "anomaly-preset", "WinCLIP · ViT-B-16-plus-240", "WinCLIP · tiny"),
    ("Annotation completion", "completion-preset", "OWLv2 · base", "OWLv2 · tiny"),
    ("Object insertion", "insertion-preset", "Stable Diffusion 1.5", "InVi · tiny"),
    ("Few-shot fine-tuning", "finetune-preset", "CLIP · ViT-B-32", "CLIP · tiny"),
]


@pytest.fixture(autouse=True)
def empty_weight_caches(tmp_path, monkeypatch):
    """This machine has no real weights: an empty models directory (the tests' sandbox) and an empty hub cache."""
    import huggingface_hub.constants

    (tmp_path / "hub").mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).first.click()


def test_real_presets_are_marked_and_the_tab_says_what_to_do_until_the_demo_preset_is_chosen(page):
    notice = page.locator("#anomaly-preset-weights-notice")
    expect(notice).to_be_visible()  # on load, before any button
    expect(notice).to_contain_text("are not installed on this machine")
    expect(notice).to_contain_text("pick the demo model")
    expect(notice).to_contain_text("make weights")
    details = notice.locator("details")
    expect(details).not_to_have_attribute("open", "")
    expect(notice.get_by_text("FEWSHOT_MODELS_DIR")).to_be_hidden()  # technical detail folded away
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "weights-not-installed.png"), full_page=False)
    notice.get_by_text("Details").click()
    expect(notice.get_by_text("FEWSHOT_MODELS_DIR")).to_be_visible()
    expect(notice).to_contain_text("timm/vit_base_patch16_plus_clip_240.laion400m_e31")
    expect(notice).to_contain_text("HF_HUB_OFFLINE is set")
    page.screenshot(path=str(ARTIFACTS / "weights-not-installed-details.png"), full_page=False)

    page.locator("#anomaly-preset input").click()
    real = page.get_by_role("option").filter(has_text="ViT-B-16-plus-240")
    expect(real).to_contain_text("not installed")
    expect(page.get_by_role("option").filter(has_text="WinCLIP · tiny")).not_to_contain_text("not installed")
    page.screenshot(path=str(ARTIFACTS / "weights-dropdown-marks.png"), full_page=False)
    page.get_by_role("option").filter(has_text="WinCLIP · tiny").click()
    expect(notice).to_be_hidden()
    page.locator("#anomaly-preset input").click()
    page.get_by_role("option").filter(has_text="ViT-B-16-plus-240").click()
    expect(notice).to_be_visible()  # and back, for the real preset


@pytest.mark.parametrize(("tab", "dropdown", "real", "demo"), DROPDOWNS[1:])
def test_every_tool_tab_marks_its_real_preset_and_explains(page, tab, dropdown, real, demo):
    open_tab(page, tab)
    notice = page.locator(f"#{dropdown}-weights-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("are not installed on this machine")
    page.locator(f"#{dropdown} input").click()
    expect(page.get_by_role("option").filter(has_text=real)).to_contain_text("not installed")
    page.get_by_role("option").filter(has_text=demo).click()
    expect(notice).to_be_hidden()


def test_a_run_with_a_model_that_is_not_installed_is_refused_at_the_click_and_submits_nothing(page, tmp_path):
    """The notice said a job would fail, and a click still submitted one that failed at once."""
    from PIL import Image

    from tasks import client

    Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "plate.png")
    expect(page.locator("#anomaly-preset-weights-notice")).to_contain_text("are not installed on this machine")
    page.locator("#anomaly-files input[type=file]").set_input_files(str(tmp_path / "plate.png"))
    page.locator("#anomaly-object textarea, #anomaly-object input").first.fill("plate")
    before = len(client.list_jobs(10_000))
    page.locator("#anomaly-run").click()
    toast = page.locator(".toast-body")
    expect(toast).to_contain_text("(winclip-vit-b-16-plus-240) are not installed on this machine", timeout=60_000)
    expect(toast).to_contain_text("pick the demo model “WinCLIP · tiny")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "weights-run-refused.png"), full_page=False)
    expect(page.locator("#anomaly-run")).to_be_enabled()
    expect(page.locator("#anomaly-status")).not_to_contain_text("Failed")
    assert len(client.list_jobs(10_000)) == before


@pytest.fixture
def online_hub(worker_env, tmp_path):
    """This machine online, with a hub (local, slowed down) that has the real WinCLIP preset's weights file."""
    from engine.presets import get_preset
    from engine.weights import manifest

    (weights,) = manifest(get_preset("winclip-vit-b-16-plus-240"))
    repos = {weights.repo: {weights.names[0]: os.urandom(21_000_000)}}
    with FakeHub(repos, seconds_per_mb=0.4) as hub:  # ~8 s: huggingface_hub reports every 10 MB
        # the web process (read on each page load) and the restarted workers: online, their own empty folders
        worker_env(HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"),
                   FEWSHOT_MODELS_DIR=str(tmp_path / "models"))
        yield hub


def test_a_missing_preset_downloads_from_the_page_with_progress_and_is_then_installed(online_hub, page):
    page.reload()
    notice = page.locator("#anomaly-preset-weights-notice")
    expect(notice).to_contain_text("Download them here", timeout=30_000)  # the page's load events read it again
    page.locator("#anomaly-preset-download").click()
    status = page.locator("#anomaly-preset-download-status")
    expect(status).to_contain_text(re.compile(r"Downloading open_clip_model\.safetensors: [\d.]+ MB of 21\.0 MB · "
                                              r"[\d.]+ [kM]B/s · about \d+ s left"), timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "weights-downloading.png"), full_page=False)
    expect(status).to_contain_text("Succeeded", timeout=120_000)
    expect(status).to_contain_text("installed: 1 file, 21.0 MB")
    expect(notice).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "weights-downloaded.png"), full_page=False)
    expect(page.locator("#anomaly-preset input")).not_to_have_value(re.compile("not installed"))
    page.locator("#anomaly-preset input").click()
    expect(page.get_by_role("option").filter(has_text="ViT-B-16-plus-240")).not_to_contain_text("not installed")


def test_an_operator_can_turn_downloads_from_the_page_off(online_hub, page, monkeypatch):
    page.reload()
    expect(page.locator("#anomaly-preset-weights-notice")).to_contain_text("Download them here", timeout=30_000)
    monkeypatch.setenv("FEWSHOT_UI_DOWNLOADS", "off")  # read on each page load, and by the button
    page.locator("#anomaly-preset-download").click()  # a page opened before: refused, and the list stays usable
    expect(page.get_by_text("Downloads from the page are off on this instance")).to_be_visible()
    expect(page.locator("#anomaly-preset")).not_to_contain_text("Error")
    expect(page.locator("#anomaly-preset input")).to_have_value(re.compile("ViT-B-16-plus-240"))
    page.reload()
    notice = page.locator("#anomaly-preset-weights-notice")
    expect(notice).to_contain_text("The first job with it downloads them first", timeout=30_000)
    expect(page.locator("#anomaly-preset-download")).to_be_hidden()
