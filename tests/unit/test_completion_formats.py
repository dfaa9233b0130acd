"""COCO / YOLO / VOC import and export: exact round trips, and every bad input named by file and line or id."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from engine.annotations.coco import write_coco
from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.annotations.read import read_dataset
from engine.annotations.voc import write_voc
from engine.annotations.yolo import write_yolo
from engine.completion.inputs import add_drawn_boxes, gather_files, load_dataset
from engine.completion.outputs import zip_folder
from engine.errors import UserInputError


def make_images(folder: Path) -> list[ImageRecord]:
    """A grayscale PNG of odd size and an RGB JPEG, with boxes (some fractional, one touching the border)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (37, 23), 90).save(folder / "gray.png")
    Image.new("RGB", (51, 29), (10, 200, 30)).save(folder / "color.jpg")
    return [
        ImageRecord("gray.png", 37, 23, [Box(1, 2, 10, 5, "bolt"), Box(20.5, 3.25, 16.5, 19.75, "nut")],
                    path=folder / "gray.png", id=7),
        ImageRecord("color.jpg", 51, 29, [Box(0, 0, 51, 29, "nut")], path=folder / "color.jpg", id=9),
    ]


def files_in(*folders: Path) -> list[tuple[str, Path]]:
    return [(str(p.relative_to(folder)), p) for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()]


def boxes_of(dataset: Dataset) -> dict[str, list[tuple]]:
    return {i.file_name: sorted((b.x, b.y, b.width, b.height, b.category) for b in i.boxes) for i in dataset.images}


@pytest.fixture
def original(tmp_path) -> Dataset:
    return Dataset(make_images(tmp_path / "images"), ["bolt", "nut"], {"bolt": 3, "nut": 5})


def test_coco_round_trip_is_exact(tmp_path, original):
    write_coco(original, tmp_path / "ann" / "instances.json")
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "ann"))
    assert back.source_format == "coco" and back.skipped == []
    assert boxes_of(back) == boxes_of(original)
    assert back.categories == ["bolt", "nut"] and back.category_ids == {"bolt": 3, "nut": 5}
    assert {i.file_name: i.id for i in back.images} == {"gray.png": 7, "color.jpg": 9}
    assert {(i.width, i.height) for i in back.images} == {(37, 23), (51, 29)}


def test_yolo_round_trip_is_exact(tmp_path, original):
    write_yolo(original, tmp_path / "yolo")
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "bolt\nnut\n"
    assert (tmp_path / "yolo" / "labels" / "color.txt").read_text() == "1 0.5 0.5 1 1\n"
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "yolo"))
    assert back.source_format == "yolo" and back.skipped == []
    assert boxes_of(back) == boxes_of(original) and back.categories == ["bolt", "nut"]


def test_voc_round_trip_is_exact(tmp_path, original):
    write_voc(original, tmp_path / "voc")
    xml = (tmp_path / "voc" / "gray.xml").read_text()
    assert "<xmin>20.5</xmin>" in xml and "<xmax>37</xmax>" in xml and "<width>37</width>" in xml
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "voc"))
    assert back.source_format == "voc" and back.skipped == []
    assert boxes_of(back) == boxes_of(original) and back.categories == ["bolt", "nut"]


def test_exports_of_255_byte_and_told_apart_names_fit_a_file_system_and_read_back(tmp_path):
    accented = "é" * 125 + "a.png"  # 255 bytes, the most a file name may have
    given = [accented, accented, "b" * 300 + ".png"]  # a duplicate, and a name longer than a file (the API allows it)
    pixels = []
    for index in range(len(given)):
        pixels.append(tmp_path / f"{index}.png")
        Image.new("RGB", (40, 30), (60 * index, 90, 30)).save(pixels[-1])
    gathered, _ = gather_files(list(zip(given, pixels, strict=True)), tmp_path / "work")
    names = [name for name, _ in gathered]
    assert names[1] == "é" * 123 + " (2).png" and len(names[1].encode()) <= 255  # told apart, still a file name
    images = list(zip(names, pixels, strict=True))
    dataset = read_dataset(images)
    for index, image in enumerate(dataset.images):
        image.boxes.append(Box(1 + index, 2, 10, 5, "bolt"))
    dataset.categories = ["bolt"]
    for writer, name in ((write_yolo, "yolo"), (write_voc, "voc")):
        written = files_in(writer(dataset, tmp_path / name))
        assert len(written) == 3 + (writer is write_yolo)  # one label per image (+ classes.txt): none overwritten
        assert all(len(part.encode()) <= 255 for label, _ in written for part in PurePosixPath(label).parts)
        back = read_dataset([*images, *written])
        assert back.skipped == [] and boxes_of(back) == boxes_of(dataset), name


def test_deeppcb_coco_to_yolo_and_voc_and_back(tmp_path, shared_data):
    root = shared_data / "detection" / "deeppcb"
    coco = read_dataset(files_in(root))
    assert (len(coco.images), coco.box_count, coco.skipped) == (24, 170, [])
    for writer, name in ((write_yolo, "yolo"), (write_voc, "voc")):
        back = read_dataset([*files_in(root / "images"), *files_in(writer(coco, tmp_path / name))])
        assert back.skipped == [] and boxes_of(back) == {k.removeprefix("images/"): v for k, v in
                                                         boxes_of(coco).items()}


def test_zipped_exports_import_again(tmp_path, original):
    archive = zip_folder(write_yolo(original, tmp_path / "yolo"), tmp_path / "labels.zip")
    back = load_dataset([*files_in(tmp_path / "images"), ("labels.zip", archive)], tmp_path / "work")
    assert boxes_of(back) == boxes_of(original)


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


def test_malformed_coco_json_names_the_line_and_column(tmp_path):
    make_images(tmp_path / "images")
    ann = coco_file(tmp_path, '{"images": [\n  {"id": 1,, "file_name": "gray.png"}\n]}')
    with pytest.raises(UserInputError, match=r"annotations.json line 2 column 12: not valid JSON"):
        read_dataset([*files_in(tmp_path / "images"), ("annotations.json", ann)])
    coco_file(tmp_path, "[1, 2]")
    with pytest.raises(UserInputError, match="not a COCO file"):
        read_dataset([*files_in(tmp_path / "images"), ("annotations.json", ann)])


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


def test_voc_bad_files_and_objects_are_skipped(tmp_path):
    make_images(tmp_path / "images")
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "gray.xml").write_text(
        "<annotation><filename>gray.png</filename><size><width>37</width><height>23</height></size>"
        "<object><name>bolt</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>7</ymax></bndbox></object>"
        "<object><name>bolt</name></object>"
        "<object><name>nut</name><bndbox><xmin>5</xmin><ymin>2</ymin><xmax>5</xmax><ymax>7</ymax></bndbox></object>"
        "</annotation>")
    (voc / "color.xml").write_text("<annotation>\n<filename>color.jpg</filename>\n<object><name>x</name>\n")
    (voc / "evil.xml").write_text('<!DOCTYPE a [<!ENTITY x "y">]><annotation>&x;</annotation>')
    dataset = read_dataset(files_in(tmp_path / "images", voc))
    assert boxes_of(dataset) == {"gray.png": [(1.0, 2.0, 10.0, 5.0, "bolt")], "color.jpg": []}
    errors = sorted(item["error"] for item in dataset.skipped)
    assert errors[0].startswith("color.xml line 4 column 0: not well-formed XML")
    assert "evil.xml: XML with a DOCTYPE" in errors[1]
    assert errors[2] == "gray.xml object 2: needs a <name> and a <bndbox>."
    assert errors[3].startswith("gray.xml object 3: the box has zero or negative size")


def test_mixed_formats_broken_images_and_stray_files(tmp_path):
    make_images(tmp_path / "images")
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "images" / "notes.docx").write_bytes(b"x")
    files = files_in(tmp_path / "images")
    dataset = read_dataset(files)
    assert sorted(i.file_name for i in dataset.images) == ["color.jpg", "gray.png"]  # PNG and JPEG together
    assert {item["file"] for item in dataset.skipped} == {"broken.png", "notes.docx"}
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "a.xml").write_text("<annotation/>")
    with pytest.raises(UserInputError, match=r"mixes annotation formats \(coco, voc\)"):
        read_dataset([*files, ("a.json", tmp_path / "a.json"), ("a.xml", tmp_path / "a.xml")])


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
