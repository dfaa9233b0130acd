"""Anomaly results at a glance, in Debian's chromium: inputs in working order, a card per part with its OK / NG
badge, no video box for images, the threshold slider only for "Set it myself", a fitted timeline with the
threshold line, the ROC plot shown whole."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.anomaly.outputs import VERDICT_COLOURS
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import choose_preset, run_anomaly
from tests.helpers import kolektor_zip

pytestmark = pytest.mark.browser
JOB_TIMEOUT = 180_000  # ms: jobs share two slow CPUs with other test runs


def top(tab, selector: str) -> float:
    return tab.locator(selector).first.bounding_box()["y"]


def inside(inner: dict, outer: dict, slack: float = 1.0) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


def test_inputs_come_in_working_order(page):
    order = ["#anomaly-method", "#anomaly-object", "#anomaly-preset", "#anomaly-references", "#anomaly-reference-set",
             "#anomaly-files", "#anomaly-run", "#anomaly-threshold-options"]
    tops = [top(page, selector) for selector in order]
    assert tops == sorted(tops), dict(zip(order, tops, strict=True))
    expect(page.locator("#anomaly-threshold-mode")).to_have_count(0)  # folded until opened


def test_each_part_gets_a_card_with_its_verdict_badge_and_no_video_box(page, metal_plate_images):
    run_anomaly(page, metal_plate_images[:2], "metal plate")
    page.locator("#anomaly-status").get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    cards = page.locator("#anomaly-gallery img")
    expect(cards).to_have_count(2)
    gallery_box = page.locator("#anomaly-gallery").bounding_box()
    for index in range(2):
        card = cards.nth(index)
        src, caption = card.get_attribute("src"), card.get_attribute("alt")
        assert src.endswith("_card.png") and caption.startswith(metal_plate_images[index].name)
        verdict = caption.rsplit(" · ", 1)[1]
        pixels = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))
        assert pixels.shape[1] > 2 * pixels.shape[0]  # three panels side by side
        other = "OK" if verdict == "NG" else "NG"
        assert (pixels == VERDICT_COLOURS[verdict]).all(axis=-1).sum() > 100
        assert not (pixels == VERDICT_COLOURS[other]).all(axis=-1).any()
        shown = card.bounding_box()
        assert shown["height"] == pytest.approx(shown["width"] * pixels.shape[0] / pixels.shape[1], abs=2)
    assert inside(cards.first.bounding_box(), gallery_box)  # the first card whole, not cropped to a square
    expect(page.locator("#anomaly-overlay-video")).to_be_hidden()
    expect(page.locator("#anomaly-timeline")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "anomaly-cards.png"), full_page=True)


def test_the_threshold_slider_moves_only_for_set_it_myself(page):
    page.locator("#anomaly-threshold-options").get_by_text("Threshold (advanced").click()
    slider = page.locator("#anomaly-threshold-value input[type=range]")
    mode = page.locator("#anomaly-threshold-mode")
    expect(slider).to_be_disabled()
    mode.get_by_text("Set it myself").click()
    expect(slider).to_be_enabled(timeout=30_000)
    mode.get_by_text("Calibrate from the good parts").click()
    expect(slider).to_be_disabled(timeout=30_000)


def test_the_video_timeline_fits_the_scores_and_draws_the_threshold(page, tmp_path, metal_plate_images):
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "belt.mp4", frames=10, size=(96, 64), fps=10)
    page.get_by_role("tab", name="Video").click()
    page.locator("#anomaly-video input[type=file]").set_input_files(str(tmp_path / "belt.mp4"))
    page.locator("#anomaly-references input[type=file]").set_input_files([str(p) for p in metal_plate_images[:2]])
    page.locator("#anomaly-object textarea, #anomaly-object input").first.fill("metal plate")
    choose_preset(page, "WinCLIP · tiny")
    page.locator("#anomaly-run-video").click()
    status = page.locator("#anomaly-status")
    status.get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    expect(page.locator("#anomaly-overlay-video video")).to_be_visible()
    chart = page.locator("#anomaly-timeline")
    y_axis = chart.locator("[aria-label^='Y-axis']")
    expect(y_axis).to_have_count(1)
    low, high = map(float, re.search(r"values from ([\d.]+) to ([\d.]+)", y_axis.get_attribute("aria-label")).groups())
    lines = chart.locator("[aria-roledescription='line mark']")
    expect(lines).to_have_count(2)
    points = {series: [float(v) for v in re.findall(rf"score: ([\d.]+); series: {series}", chart.inner_html())]
              for series in ("score", "threshold")}
    assert len(points["score"]) >= 2 and len(set(points["threshold"])) == 1
    threshold = points["threshold"][0]
    assert f"Threshold {threshold:.4f}" in status.inner_text()
    values = [*points["score"], threshold]
    assert low <= min(values) and high >= max(values) and high - low <= 0.2  # fitted, not the whole 0..1
    threshold_line = chart.locator("[aria-roledescription='line mark'][stroke='#c81e1e']")
    ends = re.findall(r"[-\d.]+,([-\d.]+)", threshold_line.get_attribute("d"))
    assert len(ends) == 2 and ends[0] == ends[1]  # a horizontal red line across the plot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "anomaly-timeline.png"), full_page=True)


def evaluate_kolektor(page, shared_data, tmp_path, shots: int = 0, compare: tuple[str, ...] = ()) -> None:
    """Evaluate WinCLIP's tiny model (and the models ticked under Compare with) on a zip of the shared KolektorSDD
    set's first pictures (the page is under test, not the scores)."""
    archive = kolektor_zip(shared_data, tmp_path)
    page.get_by_text("Evaluate on a labelled set").click()
    page.locator("#eval-zip input[type=file]").set_input_files(str(archive))
    page.locator("#eval-object textarea, #eval-object input").first.fill("commutator")
    page.locator("#eval-shots input").fill(str(shots))
    page.locator("#eval-preset input").click()
    page.get_by_role("option").filter(has_text="WinCLIP · tiny").click()
    for label in compare:
        page.locator("#eval-compare label").filter(has_text=label).click()
    page.locator("#eval-run").click()
    page.locator("#eval-status").get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)


def test_the_roc_plot_is_shown_whole(page, shared_data, tmp_path):
    evaluate_kolektor(page, shared_data, tmp_path)
    plot = page.locator("#eval-roc img")
    expect(plot).to_have_count(1)
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_in_viewport(ratio=1.0)
    shown = plot.bounding_box()
    assert shown["width"] >= 300 and shown["height"] == pytest.approx(shown["width"], abs=2)  # square, uncropped
    assert inside(shown, page.locator("#eval-roc").bounding_box())
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#eval-roc").screenshot(path=str(ARTIFACTS / "anomaly-roc.png"))
    page.screenshot(path=str(ARTIFACTS / "anomaly-evaluation.png"), full_page=True)


def test_a_skip_reason_and_every_metric_column_are_in_view(page, tmp_path, metal_plate_images):
    """Tables wrap rather than cut off: why a zip entry was skipped is read whole, the detector's last column seen."""
    archive = tmp_path / "mixed set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(metal_plate_images[0], "plate.png")
        bundle.writestr("notes.txt", "not an image")
    run_anomaly(page, [archive], "metal plate")
    page.locator("#anomaly-status").get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    reason = page.locator("#anomaly-scores").get_by_text("not an accepted file type").first
    assert inside(reason.bounding_box(), page.locator("#anomaly-scores").bounding_box())
    page.get_by_role("tab", name="Few-shot fine-tuning").click()
    page.get_by_role("tab", name="Detector", exact=True).click()
    header = page.locator("#detect-metrics").get_by_text("held-out boxes").first
    assert inside(header.bounding_box(), page.locator("#detect-metrics").bounding_box())


def test_on_a_phone_each_score_and_verdict_reads_on_one_line_beside_its_file(page, metal_plate_images):
    """At 390 x 844 the Scores table gave score and verdict a tenth of its width each: a letter per line. They keep
    a fixed width now; the file name wraps, the details scroll sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    run_anomaly(page, metal_plate_images[:2], "metal plate")
    page.locator("#anomaly-status").get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    table = page.locator("#anomaly-scores")
    cells = table.locator("span").filter(has_text=re.compile(r"^(score|verdict|0\.\d{1,4}|OK|NG)$"))  # the text
    expect(cells).to_have_count(2 + 2 * 2)
    shown = table.bounding_box()
    for index in range(cells.count()):
        cell = cells.nth(index)
        box = cell.bounding_box()
        font_px = float(cell.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        assert box["height"] < 2 * font_px, (cell.inner_text(), box)  # one line
        assert inside(box, shown), (cell.inner_text(), box)  # in view without scrolling sideways


def test_a_file_list_gives_a_small_files_size_in_whole_bytes(page, tmp_path):
    """Gradio's file lists wrote "231.0 B"; the app's sizes have no decimal for bytes."""
    small = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4), "grey").save(small)
    page.locator("#anomaly-files input[type=file]").set_input_files([str(small)])
    size = page.locator("#anomaly-files td.download a").first
    expect(size).to_have_text(re.compile(rf"^{small.stat().st_size}\sB\s⇣$"))


def test_on_a_phone_the_jobs_table_and_a_jobs_results_read_a_word_per_cell(page, metal_plate_images):
    """At 390 x 844 the Jobs table gave each of its 8 columns a share of the width: "succeeded" stood a letter per
    line. Its columns keep fixed widths now (id, tool and status in view, the rest scrolls sideways), and a job
    opened there lays its results out as its own tab does."""
    run_anomaly(page, metal_plate_images[:2], "metal plate")
    page.locator("#anomaly-status").get_by_text("Succeeded").wait_for(timeout=JOB_TIMEOUT)
    page.get_by_role("tab", name="Jobs").click()
    page.set_viewport_size({"width": 390, "height": 844})
    jobs = page.locator("#jobs-table")
    expect(jobs).to_contain_text("succeeded", timeout=30_000)
    page.locator("#jobs-table span:visible").filter(has_text=re.compile("^succeeded$")).first.click()  # the row
    page.locator("#jobs-open").click()
    results = page.locator("#jobs-results-table")
    expect(results.locator("span").filter(has_text=re.compile("^(NG|OK)$")).first).to_be_visible(timeout=30_000)
    for table, words in ((jobs, "^(job|tool|status|anomaly|succeeded)$"), (results, "^(score|verdict|OK|NG)$")):
        cells = table.locator("span:visible").filter(has_text=re.compile(words))
        assert cells.count() >= 4
        for index in range(cells.count()):
            cell = cells.nth(index)
            box = cell.bounding_box()
            font_px = float(cell.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
            assert box["height"] < 2 * font_px, (cell.inner_text(), box)  # one line
            shown = table.bounding_box()
            assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"], (
                cell.inner_text(), box)  # in view without scrolling sideways (lower rows may scroll down)
