"""Each tab's "Try a sample" in Debian's chromium: one click fills the journey's inputs (files, object name, prompt,
box, and a model this machine has: the demo preset here), one more click on the run button shows a result."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import assets
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_insertion_browser import open_insertion
from webapp import samples

pytestmark = pytest.mark.browser
RUN_MS = 240_000  # a shared, slow CPU
DEMO = re.compile("tiny")  # the weights of the real models are not installed where the tests run


def field(ui, elem_id: str):
    return ui.locator(f"#{elem_id} textarea, #{elem_id} input").first


def load_sample(ui, sample_id: str, preset_id: str) -> None:
    """Press a tab's sample button; it says so, and picks the demo model."""
    ui.locator(f"#{sample_id}").click()
    expect(ui.get_by_text("Sample loaded").first).to_be_visible()
    expect(field(ui, preset_id)).to_have_value(DEMO)


def run_and_see(ui, run_id: str, status_id: str, result: str, shot: str) -> None:
    ui.locator(f"#{run_id}").click()
    ui.locator(f"#{status_id}").get_by_text("Succeeded").wait_for(timeout=RUN_MS)
    expect(ui.locator(result).first).to_be_visible(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    ui.screenshot(path=str(ARTIFACTS / f"sample-{shot}.png"), full_page=True)


def test_the_anomaly_sample_inspects_plates_against_good_parts(page):
    load_sample(page, "anomaly-sample", "anomaly-preset")
    expect(field(page, "anomaly-object")).to_have_value(assets.ANOMALY_OBJECT)
    for elem_id, names in (("anomaly-files", assets.ANOMALY_INSPECT), ("anomaly-references", assets.ANOMALY_GOOD)):
        for name in names:
            expect(page.locator(f"#{elem_id}")).to_contain_text(name.removesuffix(".jpg"))
    run_and_see(page, "anomaly-run", "anomaly-status", "#anomaly-gallery img", "anomaly")
    expect(page.locator("#anomaly-gallery img")).to_have_count(len(assets.ANOMALY_INSPECT))
    expect(page.locator("#anomaly-status")).to_contain_text("(calibrated")  # the good parts were used
    page.get_by_role("tab", name="Video").click()
    load_sample(page, "anomaly-video-sample", "anomaly-preset")
    for name in assets.ANOMALY_VIDEO_GOOD:  # good parts framed as in the video replace the plates
        expect(page.locator("#anomaly-references")).to_contain_text(name.removesuffix(".jpg"))
    run_and_see(page, "anomaly-run-video", "anomaly-status", "#anomaly-timeline canvas, #anomaly-timeline svg",
                "anomaly-video")
    expect(page.locator("#anomaly-status")).not_to_contain_text("framed differently")


def test_the_anomaly_sample_runs_the_method_chosen(page):
    page.locator("#anomaly-method").get_by_text("MuSc", exact=True).click()
    # the model list has followed the method (its event, answered after the sample's, put MuSc's default back)
    expect(field(page, "anomaly-preset")).to_have_value(re.compile("MuSc"))
    load_sample(page, "anomaly-sample", "anomaly-preset")
    expect(field(page, "anomaly-preset")).to_have_value(re.compile("^MuSc · tiny"))
    expect(page.locator("#anomaly-method input[value=musc]")).to_be_checked()
    run_and_see(page, "anomaly-run", "anomaly-status", "#anomaly-gallery img", "anomaly-musc")
    expect(page.locator("#anomaly-status")).to_contain_text("MuSc (zero-shot over the set; 3 good parts joined it)")


def test_the_completion_sample_proposes_boxes_on_the_trays(page):
    page.get_by_role("tab", name="Annotation completion").click()
    load_sample(page, "completion-sample", "completion-preset")
    expect(page.locator("#completion-annotations")).to_contain_text(assets.COMPLETION_ANNOTATIONS.split(".")[0])
    run_and_see(page, "completion-run", "completion-status", "#completion-view canvas", "completion")
    expect(page.locator("#completion-page")).to_contain_text(assets.COMPLETION_IMAGES[0])


def test_the_insertion_sample_shows_its_box_and_inserts(page):
    open_insertion(page, "Image")
    load_sample(page, "insertion-sample", "insertion-preset")
    expect(field(page, "insertion-box")).to_have_value(",".join(map(str, assets.INSERTION_BOX)))
    expect(field(page, "insertion-prompt")).to_have_value(assets.INSERTION_PROMPT)
    page.locator("#insertion-sampling").get_by_text("Sampling").click()
    expect(page.locator("#insertion-steps input[type=number]")).to_have_value(str(samples.DEMO_STEPS["insertion"]))
    expect(page.locator("#insertion-box-message")).to_have_text("")
    expect(page.locator("#insertion-box-picture img")).to_be_visible()  # the box drawn on the desk
    run_and_see(page, "insertion-run", "insertion-status", "#insertion-gallery img", "insertion")


def test_the_video_insertion_sample_inserts_into_the_clip(page):
    open_insertion(page, "Video")
    load_sample(page, "insertion-video-sample", "insertion-video-preset")
    expect(page.locator("#insertion-video-box-picture img")).to_be_visible(timeout=60_000)  # on the anchor frame
    run_and_see(page, "insertion-video-run", "insertion-video-status", "#insertion-result-video video",
                "insertion-video")


def test_the_classifier_sample_trains_on_three_kinds_of_parts(page):
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    load_sample(page, "finetune-sample", "finetune-preset")
    trained = field(page, "finetune-name").input_value()
    run_and_see(page, "finetune-train", "finetune-status", "#finetune-metrics", "classifier")
    expect(page.locator("#finetune-metrics")).to_contain_text(assets.CLASSIFIER_CLASSES[1])
    load_sample(page, "finetune-sample", "finetune-preset")  # again: a name not taken, so training it again works
    expect(field(page, "finetune-name")).to_have_value(re.compile(r"^sample parts \d+$"))
    expect(field(page, "finetune-name")).not_to_have_value(trained)


def test_the_detector_sample_trains_on_boxed_nuts_and_washers_then_detects_them(page):
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    page.locator("#finetune-tabs").get_by_role("tab", name="Detector").click()
    load_sample(page, "detect-sample", "detect-preset")
    page.locator("#detect-settings").get_by_text("Training settings").click()
    expect(page.locator("#detect-steps input")).to_have_value(str(samples.DEMO_STEPS["finetune_detect"]))
    run_and_see(page, "detect-train", "detect-status", "#detect-metrics", "detector")
    expect(page.locator("#detect-status")).to_contain_text("saved")

    page.locator("#finetune-tabs").get_by_role("tab", name="Use a model").click()  # its sample: the newest model
    page.locator("#finetune-use-sample").click()
    expect(page.get_by_text("Press “Detect boxes” to run it").first).to_be_visible()
    expect(field(page, "finetune-model")).to_have_value(re.compile("sample nuts and washers"))
    for name in assets.COMPLETION_IMAGES:  # trays of the same parts
        expect(page.locator("#finetune-use-images")).to_contain_text(name.removesuffix(".jpg"))
    run_and_see(page, "finetune-detect-boxes", "finetune-use-status", "#finetune-boxes img", "use-detector")
    expect(page.locator("#finetune-boxes img")).to_have_count(len(assets.COMPLETION_IMAGES))
