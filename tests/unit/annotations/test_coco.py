"""COCO JSON: exact round trip, every bad part skipped by id, malformed JSON named by line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.annotations.coco import write_coco
from engine.annotations.read import read_dataset
from engine.errors import UserInputError
from tests.unit.annotations.sets import boxes_of, files_in, make_images


def test_coco_round_trip_is_exact(tmp_path, original):
    write_coco(original, tmp_path / "ann" / "instances.json")
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "ann"))
    assert back.source_format == "coco" and back.skipped == []
    assert boxes_of(back) == boxes_of(original)
    assert back.categories == ["bolt", "nut"] and back.category_ids == {"bolt": 3, "nut": 5}
    assert {i.file_name: i.id for i in back.images} == {"gray.png": 7, "color.jpg": 9}
    assert {(i.width, i.height) for i in back.images} == {(37, 23), (51, 29)}


def coco_file(folder: Path, data: dict | str) -> Path:
    path = folder / "annotations.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_coco_bad_parts_are_skipped_by_id_and_the_rest_loads(tmp_path):
    make_images(tmp_path / "images")
    data = {
        "images": [{"id": 1, "file_name": "gray.png", "width": 37, "height": 23},
                   {"id": 2, "file_name": "missing.png", "width": 10, "height": 10},
                   {"id": 3, "file_name": "color.jpg", "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "bolt"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},  # valid
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [30, 1, 20, 5]},  # outside
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},  # zero width
            {"id": 13, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, -2]},  # negative height
            {"id": 14, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]},  # unknown class
            {"id": 15, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]},  # unknown image
            {"id": 16, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},  # image not uploaded
            {"id": 17, "image_id": 1, "category_id": 1, "bbox": "1,1,5,5"},  # malformed
        ],
    }
    ann = coco_file(tmp_path, data)
    dataset = read_dataset([*files_in(tmp_path / "images"), ("annotations.json", ann)])
    assert boxes_of(dataset)["gray.png"] == [(1.0, 1.0, 5.0, 5.0, "bolt")]
    assert boxes_of(dataset)["color.jpg"] == []  # kept as an image to complete, its annotations skipped
    errors = [item["error"] for item in dataset.skipped]
    assert all(item["file"] == "annotations.json" for item in dataset.skipped)
    expected = ["annotation id 11: the box (30, 1) to (50, 6) lies outside the 37 x 23 image gray.png",
                "annotation id 12: the box has zero or negative size (0 x 5 px)",
                "annotation id 13: the box has zero or negative size (5 x -2 px)",
                "annotation id 14: category_id 99 is not in \"categories\"",
                "annotation id 15: image_id 42 is not in \"images\"",
                "image id 2: missing.png is not among the uploaded images; its 1 annotation(s) were skipped",
                "image id 3: color.jpg is 51 x 29 pixels but the annotations say 640 x 480",
                "annotation id 17: \"bbox\" must be [x, y, width, height]"]
    for fragment in expected:
        assert any(fragment in error for error in errors), (fragment, errors)
    assert len(errors) == len(expected)


def test_a_boolean_id_is_refused_alike_for_categories_and_annotations(tmp_path):
    make_images(tmp_path / "images")
    data = {"images": [{"id": 1, "file_name": "gray.png", "width": 37, "height": 23}],
            "categories": [{"id": True, "name": "bolt"}, {"id": 2, "name": "nut"}],
            "annotations": [{"id": 10, "image_id": 1, "category_id": True, "bbox": [1, 1, 5, 5]},
                            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 12, "image_id": 1, "category_id": 2, "bbox": [2, 2, 5, 5]}]}
    dataset = read_dataset([*files_in(tmp_path / "images"), ("annotations.json", coco_file(tmp_path, data))])
    assert dataset.categories == ["nut"] and boxes_of(dataset)["gray.png"] == [(2.0, 2.0, 5.0, 5.0, "nut")]
    assert [item["error"] for item in dataset.skipped] == [
        'annotations.json categories[0]: needs an integer "id" and a "name".',
        'annotations.json annotation id 10: category_id True is not in "categories".',
        'annotations.json annotation id 11: category_id 1 is not in "categories".']


def test_malformed_coco_json_names_the_line_and_column(tmp_path):
    make_images(tmp_path / "images")
    ann = coco_file(tmp_path, '{"images": [\n  {"id": 1,, "file_name": "gray.png"}\n]}')
    with pytest.raises(UserInputError, match=r"annotations.json line 2 column 12: not valid JSON"):
        read_dataset([*files_in(tmp_path / "images"), ("annotations.json", ann)])
    coco_file(tmp_path, "[1, 2]")
    with pytest.raises(UserInputError, match="not a COCO file"):
        read_dataset([*files_in(tmp_path / "images"), ("annotations.json", ann)])
