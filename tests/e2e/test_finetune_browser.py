"""The fine-tuning tab in Debian's chromium, a sub-tab per journey: train the tiny classifier preset from a zip (the
pace while it trains, the curve, the metrics, a confusion matrix only once there is one), classify with it
(thumbnails captioned with class and probability, a predictions.csv), results cleared when the model changes;
train a detector, detect boxes, download, upload, and complete annotations with it."""

from __future__ import annotations

import csv
import re
import uuid

import pytest
import torch
from playwright.sync_api import expect

from tasks import finetune_models
from tests.e2e.conftest import ARTIFACTS
from tests.helpers import colour_classes, fake_model, noise_images, shape_detection_set, zip_tree

pytestmark = pytest.mark.browser
torch.set_num_threads(1)
SUB_TABS = {"Classifier": "#finetune-train", "Detector": "#detect-train", "Use a model": "#finetune-model"}


def shot(ui, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ui.screenshot(path=str(ARTIFACTS / f"finetune-{name}.png"), full_page=True)


def open_finetune(ui, sub_tab: str) -> None:
    """The fine-tuning tab's sub-tab `sub_tab` (Classifier, Detector, Use a model)."""
    ui.get_by_role("tab", name="Few-shot fine-tuning").click()
    ui.get_by_role("tab", name=sub_tab, exact=True).click()


def choose(ui, dropdown_id: str, text: str) -> None:
    ui.locator(f"#{dropdown_id} input").click()
    ui.get_by_role("option").filter(has_text=text).first.click()


def fill_number(field, value: str) -> None:
    """Fill a number input, again if its component was still mounting when the accordion opened (gradio then
    sets its initial value over the one typed)."""
    for _ in range(20):
        field.fill(value)
        field.page.wait_for_timeout(200)
        if field.input_value() == value:
            return
    raise AssertionError(f"the field keeps {field.input_value()!r}, not {value!r}")


def start_classifier_training(ui, tmp_path, name: str, steps: int | None = None, settings=None) -> None:
    """Colour classes as a zip, the tiny preset, a model name (and a number of steps, and other `settings`), then
    Train."""
    archive = zip_tree(colour_classes(tmp_path / "set"), tmp_path / "colours.zip")
    open_finetune(ui, "Classifier")
    ui.locator("#finetune-zip input[type=file]").set_input_files([str(archive)])
    ui.locator("#finetune-name textarea, #finetune-name input").first.fill(name)
    choose(ui, "finetune-preset", "tiny")
    if steps is not None:
        ui.get_by_text("Training settings").first.click()
        fill_number(ui.locator("#finetune-steps input"), str(steps))
    if settings is not None:
        settings(ui)
    ui.locator("#finetune-train").click()


def test_selective_lora_shows_its_blocks_the_forgetting_and_the_methods_compared(page, tmp_path):
    def selective_and_compared(ui) -> None:
        ui.locator("#finetune-method").get_by_text("Selective LoRA").click()
        ui.locator("#finetune-compare-methods input").check()

    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    start_classifier_training(page, tmp_path, f"selective {uuid.uuid4().hex[:4]}", steps=20,
                              settings=selective_and_compared)
    status = page.locator("#finetune-status")
    status.get_by_text("Succeeded").wait_for(timeout=240_000)
    expect(status).to_contain_text("Retention (zero-shot on 40 images of other classes, generated shapes)")
    expect(status).to_contain_text(re.compile(r"active blocks \d of 2"))
    expect(page.locator("#finetune-blocks")).to_be_visible()
    table = page.locator("#finetune-trade-off")
    for method in ("zero-shot", "selective-lora", "WiSE-FT 0.5 (lora)", "linear"):
        expect(table).to_contain_text(method)
    expect(page.locator("#finetune-trade-off-plot img")).to_be_visible()
    shot(page, "selective-lora")


def test_class_images_show_their_file_names(page, tmp_path):
    image = noise_images(tmp_path, 1)[0].rename(tmp_path / "tile ok 0.PNG")
    open_finetune(page, "Classifier")
    page.get_by_text("…or classes one by one").click()
    page.locator("#finetune-class-0-files input[type=file]").set_input_files([str(image)])
    stem = page.locator("#finetune-class-0-files .stem").first
    expect(stem).to_have_text("tile ok 0")
    assert stem.evaluate("e => e.scrollWidth <= e.clientWidth")  # whole, not cut down to its extension


def test_each_journey_has_its_sub_tab(page):
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    for sub_tab, shown in SUB_TABS.items():
        page.get_by_role("tab", name=sub_tab, exact=True).click()
        expect(page.locator(shown)).to_be_visible()
        for other in set(SUB_TABS.values()) - {shown}:
            expect(page.locator(other)).to_be_hidden()
    expect(page.locator("#finetune-classify")).to_be_hidden()  # no model picked: no kind's button yet
    expect(page.locator("#finetune-model-hint")).to_contain_text("Pick a saved model")


def test_train_the_tiny_preset_then_classify_with_thumbnails_and_a_csv(page, tmp_path):
    name = f"browser colours {uuid.uuid4().hex[:4]}"
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    expect(page.locator("#finetune-status")).to_contain_text("Give classes and press Train")
    expect(page.locator("#finetune-confusion")).to_be_hidden()  # no empty matrix before a run
    shot(page, "classifier-before")
    start_classifier_training(page, tmp_path, name, steps=20)
    status = page.locator("#finetune-status")
    status.get_by_text("Succeeded").wait_for(timeout=180_000)
    assert f"Model {name} saved" in status.inner_text()
    page.locator("#finetune-curves canvas, #finetune-curves svg").first.wait_for()
    metrics = page.locator("#finetune-metrics")
    assert metrics.get_by_text("all", exact=True).count() >= 1 and metrics.get_by_text("red").count() >= 1
    expect(page.locator("#finetune-confusion")).to_be_visible()
    expect(page.locator("#finetune-confusion")).to_contain_text("blue")
    shot(page, "classifier-after")

    open_finetune(page, "Use a model")
    shot(page, "use-before")
    choose(page, "finetune-model", name)
    expect(page.locator("#finetune-model-hint")).to_contain_text("is a classifier of blue, green, red")
    expect(page.locator("#finetune-detect-boxes")).to_be_hidden()
    root = tmp_path / "set"
    images = [*sorted((root / "red").glob("*.png"))[:2], sorted((root / "blue").glob("*.png"))[0]]
    page.locator("#finetune-use-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#finetune-classify").click()
    page.locator("#finetune-use-status").get_by_text("Succeeded").wait_for(timeout=180_000)  # a shared, slow CPU
    gallery = page.locator("#finetune-prediction-gallery")
    expect(gallery.locator("img")).to_have_count(3)
    expect(gallery).to_contain_text(re.compile(r"red · 0\.\d{4} · red_0\.png"))
    with page.expect_download() as download:
        page.locator("#finetune-prediction-files a[href$='predictions.csv']").click()
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["class"]) for r in rows] == [(p.name, p.parent.name) for p in images]
    assert all(abs(sum(float(r[f"probability {c}"]) for c in ("blue", "green", "red")) - 1) < 1e-3 for r in rows)
    assert all(float(r["probability"]) == float(r[f"probability {r['class']}"]) for r in rows)
    shot(page, "use-after")

    other = f"other {uuid.uuid4().hex[:4]}"  # e.g. uploaded in another window: listed when the sub-tab opens
    finetune_models.save(other, fake_model(tmp_path / "detector", task="detect", input={"size": 64}))
    open_finetune(page, "Detector")
    open_finetune(page, "Use a model")
    choose(page, "finetune-model", other)
    expect(page.locator("#finetune-prediction-gallery")).to_be_hidden()  # the previous model's results are gone
    expect(page.locator("#finetune-use-status")).not_to_contain_text("Succeeded")
    expect(page.locator("#finetune-detect-boxes")).to_be_visible()
    expect(page.locator("#finetune-classify")).to_be_hidden()
    choose(page, "finetune-model", name)
    expect(page.locator("#finetune-prediction-gallery img")).to_have_count(0)
    finetune_models.delete(other)

    open_finetune(page, "Classifier")  # another base model: the run's views were not of it
    choose(page, "finetune-preset", "ViT-B-32")
    expect(status).to_contain_text("Give classes and press Train")
    expect(page.locator("#finetune-confusion")).to_be_hidden()
    expect(metrics.get_by_text("red")).to_have_count(0)


@pytest.mark.timeout(600)  # RT-DETR tiny trains at 0.1-1 steps/s on a shared 2-core CPU
def test_train_a_detector_see_curves_and_ap_detect_download_upload_and_complete(page, tmp_path):
    root = shape_detection_set(tmp_path / "set", count=12)
    archive = zip_tree(root, tmp_path / "shapes.zip")
    open_finetune(page, "Detector")
    shot(page, "detector-before")
    page.locator("#detect-data input[type=file]").set_input_files([str(archive)])
    page.locator("#detect-name textarea, #detect-name input").first.fill("browser shapes")
    choose(page, "detect-preset", "tiny")
    page.locator("#detect-settings").get_by_text("Training settings").click()
    fill_number(page.locator("#detect-steps input"), "10")  # evaluated at steps 0 and 10: a curve, per-class AP
    page.locator("#detect-train").click()
    page.locator("#detect-status").get_by_text("Succeeded").wait_for(timeout=300_000)  # a shared CPU can be slow
    assert "Model browser shapes saved" in page.locator("#detect-status").inner_text()
    for plot in ("#detect-loss", "#detect-map"):
        page.locator(f"{plot} canvas, {plot} svg").first.wait_for()
    metrics = page.locator("#detect-metrics")
    assert metrics.get_by_text("all (mAP)").count() >= 1 and metrics.get_by_text("circle").count() >= 1
    shot(page, "detector-after")

    open_finetune(page, "Use a model")
    choose(page, "finetune-model", "browser shapes")
    images = sorted((root / "images").glob("*.png"))[:2]
    page.locator("#finetune-use-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#finetune-threshold input[type=number]").fill("0.3")
    training = page.url.split("job=")[1][:32]
    page.locator("#finetune-detect-boxes").click()
    page.locator("#finetune-use-status").get_by_text("Succeeded").wait_for(timeout=180_000)  # a shared, slow CPU
    expect(page.locator("#finetune-use-status")).to_contain_text("at score ≥ 0.3")  # how many boxes it kept
    page.wait_for_url(re.compile(rf"[?&]job=(?!{training})[0-9a-f]{{32}}"))  # the prediction's, not the training's
    page.locator("#finetune-boxes img").nth(1).wait_for()
    expect(page.locator("#finetune-box-files")).to_contain_text("detections.csv")
    shot(page, "use-detector-after")

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
    page.locator("#finetune-upload").click()  # the name is taken now: told, and the model list stays usable
    expect(page.get_by_text("already exists").first).to_be_visible()
    expect(page.locator("#finetune-model")).not_to_contain_text("Error")
    expect(page.locator("#finetune-model-status")).to_contain_text("Not uploaded")  # not the last "Uploaded …"

    page.get_by_role("tab", name="Annotation completion").click()
    page.locator("#completion-images input[type=file]").set_input_files([str(p) for p in images])
    page.locator("#completion-refresh-models").click()
    page.locator("#completion-preset input").click()
    page.get_by_role("option", name="Fine-tuned detector · browser shapes (square, circle)").click()
    page.locator("#completion-run").click()
    page.locator("#completion-status").get_by_text("Succeeded").wait_for()
    assert "fine-tuned detector browser shapes" in page.locator("#completion-status").inner_text()


def test_cancel_training_keeps_the_best_checkpoint(page, tmp_path):
    start_classifier_training(page, tmp_path, "cancelled colours", steps=100_000)
    status = page.locator("#finetune-status")
    status.get_by_text("Running").wait_for()
    pace = re.compile(r"Step \d+/100000 · loss [\d.]+ · [\d.]+ steps/s · about \d+ (s|min) left")
    expect(status).to_contain_text(pace, timeout=120_000)  # while it trains
    shot(page, "classifier-during")
    page.locator("#finetune-curves canvas, #finetune-curves svg").first.wait_for()  # some steps are done
    page.locator("#finetune-cancel").click()
    status.get_by_text("Succeeded").wait_for()
    assert "Model cancelled colours saved" in status.inner_text() and "stopped: cancelled" in status.inner_text()


def test_a_message_quoting_text_with_a_less_than_sign_shows_it_whole(page, tmp_path):
    """The toast renders HTML: "Model name 'a<b & c>d' is…" showed as "Model name 'ad' is…", "<b …>" taken for a
    bold tag."""
    start_classifier_training(page, tmp_path, "a<b & c>d")
    toast = page.locator(".toast-body")
    expect(toast).to_contain_text("Model name 'a<b & c>d' is not accepted: use 1 to 60 letters", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    toast.first.screenshot(path=str(ARTIFACTS / "toast-less-than.png"))
