"""A completion's inputs: zips (exports zipped import again, traversal refused), drawn boxes and their limits."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from engine.annotations.coco import write_coco
from engine.annotations.read import gather_files, read_dataset
from engine.annotations.yolo import write_yolo
from engine.completion.inputs import add_drawn_boxes, load_dataset
from engine.completion.outputs import zip_folder
from engine.errors import UserInputError
from tests.unit.annotations.sets import boxes_of, files_in, make_images


def test_zipped_exports_import_again(tmp_path, original):
    archive = zip_folder(write_yolo(original, tmp_path / "yolo"), tmp_path / "labels.zip")
    back = load_dataset([*files_in(tmp_path / "images"), ("labels.zip", archive)], tmp_path / "work")
    assert boxes_of(back) == boxes_of(original)


def test_a_zip_with_traversal_paths_is_refused_and_nothing_uploaded_changes(tmp_path, original):
    write_coco(original, tmp_path / "ann.json")
    uploads = [*files_in(tmp_path / "images"), ("ann.json", tmp_path / "ann.json")]
    before = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in uploads}
    load_dataset(uploads, tmp_path / "work")
    assert before == {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in uploads}
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../../escape.png", b"x")
    with pytest.raises(UserInputError, match="points outside the archive"):
        gather_files([("evil.zip", evil)], tmp_path / "work2")
    assert not (tmp_path / "escape.png").exists()


def test_drawn_boxes_join_the_set_and_bad_ones_are_explained(tmp_path):
    dataset = read_dataset([("gray.png", make_images(tmp_path)[0].path)])
    add_drawn_boxes(dataset, [{"image": "gray.png", "box": [2, 2, 8, 8], "category": " screw  head "},
                              {"image": "nope.png", "box": [2, 2, 8, 8], "category": "screw"},
                              {"image": "gray.png", "box": [2, 2, 80, 8], "category": "screw"},
                              {"image": "gray.png", "box": [2, 2, 8, 8], "category": ""}])
    assert boxes_of(dataset)["gray.png"] == [(2.0, 2.0, 8.0, 8.0, "screw head")]
    assert dataset.categories == ["screw head"]
    errors = [item["error"] for item in dataset.skipped]
    assert errors[0] == "drawn box 2: the image 'nope.png' is not in the set."
    assert "drawn box 3: the box (2, 2) to (82, 10) lies outside" in errors[1]
    assert errors[2] == "drawn box 4: a class name is empty."


def test_drawn_boxes_meet_the_shared_limits_named_by_box_and_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_CLASS_NAME_CHARS", "8")
    monkeypatch.setenv("FEWSHOT_MAX_CLASSES", "2")
    monkeypatch.setenv("FEWSHOT_MAX_BOXES_PER_IMAGE", "3")
    monkeypatch.setenv("FEWSHOT_MAX_BOXES", "10")
    dataset = read_dataset([("gray.png", make_images(tmp_path)[0].path)])

    def drawn(category: str = "bolt", box: object = (2, 2, 8, 8), image: str = "gray.png") -> dict:
        return {"image": image, "box": box, "category": category}

    add_drawn_boxes(dataset, [
        drawn(), drawn("nut"), drawn("a" * 9), drawn("washer"), drawn(box=[float("nan"), 2, 8, 8]),
        drawn(box=["1e400", 2, 8, 8]), drawn(box=[True, 2, 8, 8]), drawn(box="x" * 10_000), drawn("nut"),
        drawn("nut"),
    ])
    assert [b.category for b in dataset.images[0].boxes] == ["bolt", "nut", "nut"] and dataset.categories == [
        "bolt", "nut"]
    errors = [item["error"] for item in dataset.skipped]
    assert errors == [
        "drawn box 3: a class name of 9 characters; at most 8 are accepted (FEWSHOT_MAX_CLASS_NAME_CHARS).",
        "drawn box 4: its class 'washer' would be class 3; at most 2 are accepted in one set (FEWSHOT_MAX_CLASSES).",
        "drawn box 5: box value 1 must be a finite number, not nan.",
        "drawn box 6: box value 1 must be a finite number, not '1e400'.",
        "drawn box 7: box value 1 must be a finite number, not True.",
        f"drawn box 8: the box must be [x, y, width, height], not {'x' * 10_000!r:.60}….",
        "drawn box 10: gray.png has 3 boxes already; at most 3 are accepted per image (FEWSHOT_MAX_BOXES_PER_IMAGE).",
    ]
    with pytest.raises(UserInputError, match=r"^drawn box 8: more than 10 boxes in one set; at most 10 are accepted "
                                             r"\(FEWSHOT_MAX_BOXES\)\.$"):
        add_drawn_boxes(dataset, [drawn()] * 10**6)  # 3 boxes in the set already: the 8th drawn one is the 11th


def test_a_zip_of_nothing_usable_says_what_was_skipped(tmp_path):
    archive = tmp_path / "nested.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("inner.zip", b"PK")
    with pytest.raises(UserInputError, match=r"No images given.*nested\.zip/inner\.zip: archives inside archives"):
        load_dataset([("nested.zip", archive)], tmp_path / "work")
