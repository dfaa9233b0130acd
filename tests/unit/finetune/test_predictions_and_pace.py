"""What a prediction job writes as a table (predictions.csv, detections.csv), and the training pace line."""

from __future__ import annotations

import csv

from engine.finetune.predict import Result, save, table
from engine.finetune.training import pace_text


def classifier_result(**extra) -> Result:
    rows = [{"file": "a.png", "class": "red", "probability": 0.9, "probabilities": {"red": 0.9, "blue": 0.1},
             "image": "thumb_0000_a.jpg", **extra}]
    return Result("classify", "colours", ["red", "blue"], rows, [], alpha=1.0, outputs=["thumb_0000_a.jpg"])


def test_a_classifier_table_has_one_probability_column_per_class_and_the_time_of_video_frames():
    assert table(classifier_result()) == (
        ["file", "class", "probability", "probability red", "probability blue"], [["a.png", "red", 0.9, 0.9, 0.1]])
    header, rows = table(classifier_result(time_s=2.5))
    assert header[:3] == ["file", "time_s", "class"] and rows[0][:3] == ["a.png", 2.5, "red"]


def test_a_detector_table_has_a_row_per_box_and_one_for_an_image_without_boxes():
    rows = [{"file": "a.png", "image": "boxes_0000_a.jpg",
             "boxes": [{"box": [1, 2, 3, 4], "category": "screw", "score": 0.8},
                       {"box": [5, 6, 7, 8], "category": "nut", "score": 0.6}]},
            {"file": "b.png", "image": "boxes_0001_b.jpg", "boxes": []}]
    header, table_rows = table(Result("detect", "parts", ["screw", "nut"], rows, []))
    assert header == ["file", "class", "score", "x", "y", "width", "height"]
    assert table_rows == [["a.png", "screw", 0.8, 1, 2, 3, 4], ["a.png", "nut", 0.6, 5, 6, 7, 8],
                          ["b.png", "", "", "", "", "", ""]]


def test_save_writes_the_json_and_the_csv_first_in_the_outputs(tmp_path):
    result = save(classifier_result(), tmp_path, "predictions.json")
    assert result.outputs == ["predictions.json", "predictions.csv", "thumb_0000_a.jpg"]
    with open(tmp_path / "predictions.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["file", "class", "probability", "probability red", "probability blue"],
                                            ["a.png", "red", "0.9", "0.9", "0.1"]]
    assert "thumb_0000_a.jpg" in (tmp_path / "predictions.json").read_text()  # the whole result, rows as given


def test_the_pace_gives_steps_per_second_and_the_time_left_by_steps_or_budget():
    assert pace_text(40, 200, 12.5, 900) == " · 3.2 steps/s · about 50 s left"
    assert pace_text(40, 200, 12.5, 20) == " · 3.2 steps/s · about 20 s left"  # the time budget ends it first
    assert pace_text(300, 1000, 10, 900) == " · 30 steps/s · about 23 s left"
    assert pace_text(1, 100, 8, 900) == " · 0.12 steps/s · about 13 min left"
    assert pace_text(0, 100, 0, 900) == ""
