"""Reading a whole upload: format detection, conversions between the formats, long names, stray files."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from PIL import Image

from engine.annotations.dataset import Box
from engine.annotations.read import gather_files, read_dataset
from engine.annotations.voc import write_voc
from engine.annotations.yolo import write_yolo
from engine.errors import UserInputError
from tests.helpers import FIRST_PAGE_NOTE, several_pages
from tests.unit.annotations.sets import boxes_of, files_in, make_images


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


def _coco_naming(names: list[str]) -> str:
    import json

    return json.dumps({"images": [{"id": i, "file_name": n} for i, n in enumerate(names, start=1)],
                       "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 4, 4]}
                                       for i in range(1, len(names) + 1)],
                       "categories": [{"id": 1, "name": "can"}]})


def test_annotations_find_images_named_in_another_case(tmp_path):
    """Annotations written on Windows or macOS name 'IMG_1.JPG' for the upload 'img_1.jpg': the same file there."""
    for name in ("shelf/img_1.jpg", "Photo.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20)).save(tmp_path / name)
    (tmp_path / "ann.json").write_text(_coco_naming(["Shelf/IMG_1.JPG", "photo.PNG"]))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "PHOTO.txt").write_text("0 0.5 0.5 0.2 0.2\r\n")
    (tmp_path / "classes.txt").write_text("can\r\n")
    images = [("shelf/img_1.jpg", tmp_path / "shelf/img_1.jpg"), ("Photo.png", tmp_path / "Photo.png")]
    coco = read_dataset([*images, ("ann.json", tmp_path / "ann.json")])
    assert {name: len(boxes) for name, boxes in boxes_of(coco).items()} == {"shelf/img_1.jpg": 1, "Photo.png": 1}
    assert not coco.skipped
    yolo = read_dataset([*images, ("labels/PHOTO.txt", tmp_path / "labels/PHOTO.txt"),
                         ("classes.txt", tmp_path / "classes.txt")])
    assert {name: len(boxes) for name, boxes in boxes_of(yolo).items()} == {"shelf/img_1.jpg": 0, "Photo.png": 1}


def test_a_name_several_images_share_is_refused_as_ambiguous_not_as_missing(tmp_path):
    """Two folders each with 'img.jpg' and annotations naming just 'img.jpg': the message says which match."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (20, 20)).save(tmp_path / folder / "img.jpg")
    (tmp_path / "ann.json").write_text(_coco_naming(["img.jpg"]))
    (tmp_path / "img.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "classes.txt").write_text("can\n")
    images = [("a/img.jpg", tmp_path / "a/img.jpg"), ("b/img.jpg", tmp_path / "b/img.jpg")]
    for labels in ([("ann.json", tmp_path / "ann.json")],
                        [("img.txt", tmp_path / "img.txt"), ("classes.txt", tmp_path / "classes.txt")]):
        dataset = read_dataset([*images, *labels])
        assert dataset.box_count == 0
        [problem] = [item["error"] for item in dataset.skipped]
        assert "2 uploaded images ('a/img.jpg', 'b/img.jpg') match" in problem and "folder" in problem
        assert "not among" not in problem and "no uploaded image" not in problem


def test_sides_swapped_by_an_exif_turn_are_explained(tmp_path):
    """A phone photo stored 40 x 20 and turned upright by its EXIF orientation is 20 x 40 here; annotations from a
    tool that ignored the orientation say 40 x 20. The message says why, instead of only the mismatch."""
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    Image.new("RGB", (40, 20), (90, 90, 90)).save(tmp_path / "phone.jpg", exif=exif)
    Image.new("RGB", (40, 20), (90, 90, 90)).save(tmp_path / "plain.jpg")
    coco = _coco_naming(["phone.jpg", "plain.jpg"]).replace('"file_name": "phone.jpg"',
                                                            '"file_name": "phone.jpg", "width": 40, "height": 20')
    (tmp_path / "ann.json").write_text(coco.replace('"file_name": "plain.jpg"',
                                                    '"file_name": "plain.jpg", "width": 20, "height": 40'))
    (tmp_path / "phone.xml").write_text("<annotation><filename>phone.jpg</filename><size><width>40</width>"
                                        "<height>20</height></size></annotation>")
    images = [("phone.jpg", tmp_path / "phone.jpg"), ("plain.jpg", tmp_path / "plain.jpg")]
    for labels in ([("ann.json", tmp_path / "ann.json")], [("phone.xml", tmp_path / "phone.xml")]):
        problems = {item["error"].split(":")[0]: item["error"] for item in read_dataset([*images, *labels]).skipped}
        turned = next(text for text in problems.values() if "phone.jpg is 20 x 40 pixels" in text)
        assert "EXIF orientation turns it" in turned
        assert not any("EXIF" in text for text in problems.values() if "plain.jpg is" in text)


def test_an_image_of_several_pages_is_read_by_its_first_and_the_set_says_so(tmp_path):
    """Detector training, K-shot runs and completion read their images here: a TIFF's later pages were dropped
    without a word."""
    Image.new("RGB", (40, 30), "grey").save(tmp_path / "a.png")
    scan = several_pages(tmp_path / "b.tiff", "red")
    dataset = read_dataset([("a.png", tmp_path / "a.png"), ("scans/b.tiff", scan)])
    assert [(image.file_name, image.width) for image in dataset.images] == [("a.png", 40), ("scans/b.tiff", 48)]
    assert [note.split(" Save")[0] for note in dataset.notes] == [f"scans/b.tiff: {FIRST_PAGE_NOTE}"]
    assert read_dataset([("a.png", tmp_path / "a.png")]).notes == []
