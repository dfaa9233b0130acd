"""YOLO txt: exact round trip, bad lines skipped by line, missing class names explained."""

from __future__ import annotations

import pytest

from engine.annotations.read import read_dataset
from engine.annotations.yolo import write_yolo
from engine.errors import UserInputError
from tests.unit.annotations.sets import boxes_of, files_in, make_images


def test_yolo_round_trip_is_exact(tmp_path, original):
    write_yolo(original, tmp_path / "yolo")
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "bolt\nnut\n"
    assert (tmp_path / "yolo" / "labels" / "color.txt").read_text() == "1 0.5 0.5 1 1\n"
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "yolo"))
    assert back.source_format == "yolo" and back.skipped == []
    assert boxes_of(back) == boxes_of(original) and back.categories == ["bolt", "nut"]


def test_yolo_bad_lines_are_skipped_by_line(tmp_path):
    make_images(tmp_path / "images")
    labels = tmp_path / "yolo"
    (labels / "labels").mkdir(parents=True)
    (labels / "classes.txt").write_text("bolt\nnut\n")
    (labels / "labels" / "gray.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"  # valid
        "7 0.5 0.5 0.2 0.2\n"  # class out of range
        "0 0.5 0.5\n"  # too few values
        "1 x 0.5 0.2 0.2\n"  # not a number
        "1 0.95 0.5 0.3 0.2\n"  # outside
        "\n# a comment\n"
        "0 0.1 0.1 0.1 0.1 0.2 0.2 0.3 0.3\n"  # polygon
    )
    (labels / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    dataset = read_dataset(files_in(tmp_path / "images", labels))
    assert len(boxes_of(dataset)["gray.png"]) == 1
    errors = sorted(item["error"] for item in dataset.skipped)
    assert [e.split(":")[0] for e in errors] == ["labels/gray.txt line 2", "labels/gray.txt line 3",
                                                 "labels/gray.txt line 4", "labels/gray.txt line 5",
                                                 "labels/gray.txt line 8", "labels/orphan.txt"]
    assert "class 7 is not in classes.txt (0 to 1)" in errors[0]
    assert "segmentation polygon" in errors[4] and "no uploaded image has the stem 'orphan'" in errors[5]


def test_yolo_without_class_names_says_what_to_add(tmp_path):
    make_images(tmp_path / "images")
    (tmp_path / "gray.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserInputError, match=r"add classes\.txt"):
        read_dataset([*files_in(tmp_path / "images"), ("gray.txt", tmp_path / "gray.txt")])
