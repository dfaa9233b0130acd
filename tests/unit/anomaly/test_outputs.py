"""Result cards: three panels side by side under a badge whose colour follows the verdict."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.anomaly.methods import ANOMALYDINO, MUSC, WINCLIP
from engine.anomaly.outputs import (
    VERDICT_COLOURS,
    card_line,
    card_panel_size,
    result_card,
    size_warnings,
    write_maps,
)
from engine.anomaly.pipeline import AnomalyResult
from engine.anomaly.thresholds import user_threshold
from engine.visualize import heatmap_overlay

GREY = (120, 120, 120)


def _part(size: tuple[int, int] = (120, 60)) -> tuple[Image.Image, np.ndarray]:
    """A grey part whose map is hot (0.9) in a square on the left and cold (0.1) elsewhere."""
    scores = np.full(size[::-1], 0.1, dtype=np.float32)
    scores[10:40, 10:40] = 0.9
    return Image.new("RGB", size, GREY), scores


def _colour_count(pixels: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((pixels == colour).all(axis=-1).sum())


@pytest.mark.parametrize("score, verdict", [(0.7, "NG"), (0.3, "OK")])
def test_a_card_is_three_panels_under_a_badge_of_the_verdicts_colour(score, verdict):
    image, scores = _part()
    card = result_card(image, scores, user_threshold(0.5), score, "part.png")
    width, height = card_panel_size(image.size)
    assert (width, height) == (240, 120)  # a small part is enlarged (x2), its aspect kept
    gap = (card.width - 3 * width) / 4
    assert gap == int(gap) and 0 < gap < width / 10 and card.height > height
    pixels = np.asarray(card)
    top, gap = card.height - int(gap) - height, int(gap)
    hot, cold = (top + 25 * 2, 25 * 2), (top + 25 * 2, 100 * 2)  # (row, column) inside each panel
    panel = [gap + index * (width + gap) for index in range(3)]
    assert tuple(pixels[hot[0], panel[0] + hot[1]]) == GREY and tuple(pixels[cold[0], panel[0] + cold[1]]) == GREY
    heat = np.asarray(heatmap_overlay(Image.new("RGB", (1, 1), GREY), np.full((1, 1), 0.9)))[0, 0]
    assert np.abs(pixels[hot[0], panel[1] + hot[1]].astype(int) - heat).max() <= 2
    tinted = pixels[hot[0], panel[2] + hot[1]]
    assert tinted[0] > GREY[0] + 40 and tinted[1] < GREY[1] - 20  # the region above the threshold is red
    assert tuple(pixels[cold[0], panel[2] + cold[1]]) == GREY
    header = pixels[:top]
    other = "OK" if verdict == "NG" else "NG"
    assert _colour_count(header, VERDICT_COLOURS[verdict]) > 100 and _colour_count(header, VERDICT_COLOURS[other]) == 0



def test_the_card_and_the_video_timeline_write_scores_as_the_page_does(monkeypatch):
    """4 decimals, as the status line and the table (the card said "threshold 0.293" beside "0.2926" on the page)."""
    import engine.anomaly.inspection as inspection

    threshold = user_threshold(0.292649)
    assert card_line(0.290812, threshold, "a.png") == "score 0.2908 · threshold 0.2926 · a.png"
    titles = []
    monkeypatch.setattr(inspection, "line_chart", lambda *args, **kwargs: titles.append(args[3]))
    inspection.timeline_plot([{"time_s": 0.0, "score": 0.3}], threshold, 1.0, "clip.mp4")
    assert titles == ["clip.mp4: score per frame, threshold 0.2926"]

def test_the_badge_is_readable_at_any_image_size():
    """The lettering scales with the panels: the badge of a large part is taller than that of a tiny one."""
    def badge_height(size: tuple[int, int]) -> int:
        image, _ = _part()
        card = result_card(image.resize(size), np.zeros(size[::-1], np.float32), user_threshold(0.5), 0.9, "x")
        rows = (np.asarray(card) == VERDICT_COLOURS["NG"]).all(axis=-1).any(axis=1)
        return int(rows.sum())

    small, large = badge_height((32, 24)), badge_height((2000, 1500))
    assert small >= 20 and large > 1.5 * small


def test_write_maps_writes_a_card_per_image_beside_the_map_and_overlay(tmp_path):
    image, scores = _part()
    threshold = user_threshold(0.5)
    records, files = write_maps(tmp_path, ["a/part one.png"], [image], [AnomalyResult(0.7, scores)], threshold)
    assert records[0]["card"] == "000_part_one_card.png" and files == [
        "000_part_one_map.png", "000_part_one_overlay.png", "000_part_one_card.png"]
    written = np.asarray(Image.open(tmp_path / "000_part_one_card.png"))
    assert np.array_equal(written, np.asarray(result_card(image, scores, threshold, 0.7, "a/part one.png")))


@pytest.mark.parametrize("method, named", [(WINCLIP, "WinCLIP+"), (ANOMALYDINO, "AnomalyDINO"), (MUSC, "MuSc")])
def test_the_reference_size_warning_names_the_method_that_ran(method, named):
    references = [Image.new("RGB", (1, 1)), Image.new("RGB", (1, 5000))]
    warnings = size_warnings({(64, 64)}, references, method)
    assert len(warnings) == 1 and f"so {named} compares them anyway" in warnings[0]
    assert size_warnings({(1, 1)}, references[:1], method) == []
