"""The completion review's picture: two proposals with the same box keep both ids in sight (the annotator writes
each label at its box's corner, the first box's on top), and a padded label still reads back as its proposal; the
picture is fitted to the panel whatever the image's size, with room for the labels at its edges, and a box handed
back where it was drawn is no edit; the address names the image under review, as a whole number in range."""

from __future__ import annotations

import pytest
from PIL import Image

from webapp import completion_tab as tab


def proposal(pid: int, box: list[float], score: float) -> dict:
    return {"id": pid, "box": box, "score": score, "category": "nut", "exemplar": False}


def review_of(tmp_path, monkeypatch, size: tuple[int, int], preview_scale: float, proposals: list[dict]) -> dict:
    """A one-image review whose preview (the image at `preview_scale`) is on disk."""
    width, height = size
    Image.new("RGB", (round(width * preview_scale), round(height * preview_scale))).save(tmp_path / "preview.png")
    monkeypatch.setattr(tab.client, "artifact_path", lambda job, name: tmp_path / name)
    item = {"file": "tray.png", "preview": "preview.png", "preview_scale": preview_scale, "width": width,
            "height": height, "existing": [], "proposals": proposals}
    return {"job": "j", "accepted": [], "rejected": [], "edited": {}, "added": [],
            "doc": {"images": [item], "categories": ["nut"]}}


def test_proposals_with_one_box_draw_their_ids_apart(tmp_path, monkeypatch):
    review = review_of(tmp_path, monkeypatch, (100, 80), 1.0, [
        proposal(1, [10, 10, 20, 20], 0.9), proposal(2, [10, 10, 20, 20], 0.8), proposal(3, [10, 10, 20, 20], 0.7),
        proposal(4, [50, 40, 10, 10], 0.6)])
    item = review["doc"]["images"][0]
    labels = [box["label"] for box in tab.annotator_value(review, item, 0.0, selected=1)["boxes"]]
    assert labels == ["#1 ◀", " " * 16 + "#2", " " * 26 + "#3", "#4"]  # past "#1 ◀", then past "#2" too
    assert [int(tab.LABEL.match(label).group(2)) for label in labels] == [1, 2, 3, 4]


@pytest.mark.parametrize(("size", "preview_scale", "fitted"), [
    ((320, 240), 1.0, (853, 640)),  # small: drawn larger than its own size, so the labels cover less of it
    ((2400, 1600), 1280 / 2400, (960, 640)),  # large (its preview 1280 wide): shrunk to the panel's height
    ((600, 200), 1.0, (1200, 400)),  # wide: to the panel's width
])
def test_the_picture_fills_the_panel_keeping_its_aspect_ratio(tmp_path, monkeypatch, size, preview_scale, fitted):
    review = review_of(tmp_path, monkeypatch, size, preview_scale, [proposal(1, [10, 20, 30, 40], 0.9)])
    item = review["doc"]["images"][0]
    value = tab.annotator_value(review, item, 0.0, selected=None)
    top = value["image"].height - fitted[1]
    scale = min(1200 / size[0], 640 / size[1])
    assert value["image"].width >= fitted[0] and top >= tab.LABEL_HEIGHT
    assert value["boxes"][0]["xmin"] == pytest.approx(10 * scale, abs=0.01)
    assert value["boxes"][0]["ymax"] == pytest.approx(top + 60 * scale, abs=0.01)


def test_labels_at_the_right_edge_end_inside_the_picture_on_a_phone(tmp_path, monkeypatch):
    review = review_of(tmp_path, monkeypatch, (320, 240), 1.0, [
        proposal(1, [300, 100, 20, 20], 0.9), proposal(2, [150, 100, 20, 20], 0.8)])
    item = review["doc"]["images"][0]
    value = tab.annotator_value(review, item, 0.0, selected=1)
    width = value["image"].width
    assert width > 853  # white room on the right
    on_phone = tab.NARROWEST / width  # screen pixels per picture pixel
    for box in value["boxes"]:
        label = tab.LABEL_CHARACTER * len(box["label"]) + tab.LABEL_PADDING
        assert box["xmin"] * on_phone + label <= tab.NARROWEST
    assert (value["image"].height - 640) * on_phone >= tab.LABEL_HEIGHT  # and a label above a box at the top


def test_boxes_handed_back_unmoved_are_no_edit_and_a_moved_one_is_saved_in_image_pixels(tmp_path, monkeypatch):
    review = review_of(tmp_path, monkeypatch, (320, 240), 1.0, [proposal(1, [100, 100, 30, 30], 0.9)])
    item = review["doc"]["images"][0]
    saved = []
    monkeypatch.setattr(tab, "_persist", lambda changed, request: saved.append(changed) or changed)
    value = tab.annotator_value(review, item, 0.0, selected=1)
    assert tab.apply_edits(review, {"boxes": value["boxes"]}, 0.0, 0, 1) == (tab.gr.skip(),) * 7
    scale = 640 / 240
    moved = {**value["boxes"][0], "xmin": value["boxes"][0]["xmin"] + 10 * scale,
             "xmax": value["boxes"][0]["xmax"] + 10 * scale}
    tab.apply_edits(review, {"boxes": [moved]}, 0.0, 0, 1)
    assert saved[-1]["edited"] == {"1": {"box": [110.0, 100.0, 30.0, 30.0], "category": "nut"}}
    assert saved[-1]["accepted"] == [1]


@pytest.mark.parametrize(("value", "page"), [
    ("3", 2), ("1", 0), (" 2 ", 1), ("5", 4),
    ("6", 0), ("0", 0), ("-1", 0), ("2.5", 0), ("x", 0), ("", 0), (None, 0), ("²", 0), ("9" * 400, 0),
])
def test_the_image_in_the_address_is_a_whole_number_in_range(value, page):
    assert tab.image_in_address(value, 5) == page


def test_a_picture_of_another_image_than_the_page_is_no_edit(tmp_path, monkeypatch):
    """A reload's jump to its image, or a second Next, can move the page before the picture shown a moment earlier
    reports its change: that picture's boxes are not this image's (they became 100 added boxes, and this image's
    proposals were all rejected)."""
    review = review_of(tmp_path, monkeypatch, (320, 240), 1.0, [proposal(1, [100, 100, 30, 30], 0.9)])
    review["doc"]["images"].append({**review["doc"]["images"][0], "file": "tray_2.png",
                                    "proposals": [proposal(2, [10, 10, 30, 30], 0.9)]})
    monkeypatch.setattr(tab, "_persist", lambda changed, request: pytest.fail("saved a stale picture"))
    value, _, first_line, *_ = tab.render(review, 0.0, 0)
    second_line = tab.render(review, 0.0, 1)[2]
    assert tab.apply_edits(review, {"boxes": value["boxes"]}, 0.0, 1, None, first_line) == (tab.gr.skip(),) * 7
    for page in (-1, 2):  # and no page out of range
        assert tab.apply_edits(review, {"boxes": []}, 0.0, page, None, second_line) == (tab.gr.skip(),) * 7
