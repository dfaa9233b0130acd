"""Pascal VOC XML: one <annotation> file per image, 0-based pixel corners; parsed without DOCTYPE or entities."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from engine.annotations.dataset import (
    Box,
    BoxBudget,
    Dataset,
    ImageIndex,
    ImageRecord,
    check_class_names,
    checked_box,
    label_names,
    over_image_limit,
    read_annotation_bytes,
    round_px,
    skip,
    turned_hint,
)
from engine.errors import UserInputError
from engine.limits import class_name_problem, max_boxes_per_image, quoted

_UNSAFE_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
VOC_ELEMENTS_PER_BOX = 16  # <object> with name, pose, truncated, difficult, bndbox and four corners, and slack


def _num(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a decimal point."""
    value = round_px(value)
    return str(int(value)) if value == int(value) else repr(value)



def _voc_root(name: str, raw: bytes) -> ET.Element:
    """The parsed file, built element by element and abandoned (UserInputError) once it holds more objects, or
    more elements, than one image's boxes need, so a huge file never becomes a huge tree."""
    limit = max_boxes_per_image()
    objects = elements = 0
    root = None
    try:
        for _event, element in ET.iterparse(io.BytesIO(raw), events=("start",)):
            root = element if root is None else root
            elements += 1
            objects += element.tag == "object"
            if objects > limit or elements > VOC_ELEMENTS_PER_BOX * limit + 100:
                raise UserInputError(over_image_limit(name))
    except ET.ParseError as exc:
        line, column = exc.position
        raise UserInputError(f"{name} line {line} column {column}: not well-formed XML.") from None
    if root is None:
        raise UserInputError(f"{name}: empty XML file.")
    return root


def _voc_object(obj: ET.Element, where: str, image: ImageRecord) -> Box | str:
    """One <object> as a box, or why it is not one."""
    category = (obj.findtext("name") or "").strip()
    bndbox = obj.find("bndbox")
    if not category or bndbox is None:
        return f"{where}: needs a <name> and a <bndbox>."
    problem = class_name_problem(category)
    if problem:
        return f"{where}: {problem}."
    try:
        x0, y0, x1, y1 = (float(bndbox.findtext(tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax"))
    except ValueError:
        return f"{where}: <bndbox> needs numeric xmin, ymin, xmax and ymax."
    box = checked_box(x0, y0, x1 - x0, y1 - y0, category, image)
    return f"{where}: {box}." if isinstance(box, str) else box


def read_voc(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
              skipped: list[dict[str, str]]) -> Dataset:
    found: set[str] = set()
    budget = BoxBudget()
    for name, path in annotation_files:
        if PurePosixPath(name).suffix.lower() != ".xml":
            continue
        try:
            raw = read_annotation_bytes(name, path)
            if _UNSAFE_XML.search(raw):
                raise UserInputError(f"{name}: XML with a DOCTYPE or entity declarations is not accepted.")
            root = _voc_root(name, raw)
        except UserInputError as exc:
            skip(skipped, name, str(exc))
            continue
        if root.tag != "annotation":
            skip(skipped, name, f"{name}: the root element is <{quoted(root.tag)}>, not a Pascal VOC <annotation>.")
            continue
        declared = (root.findtext("filename") or "").strip()
        image = (index.find(declared) if declared else None) or index.find_stem(name)
        if image is None:
            skip(skipped, name, f"{name}: {index.missing(declared) if declared else index.missing(name, stem=True)}; "
                                 "its objects were skipped.")
            continue
        size = root.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            try:
                width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            except (OverflowError, ValueError):
                width, height = image.width, image.height
            if (width, height) != (image.width, image.height):
                image.skipped_boxes += sum(1 for _ in root.iter("object"))
                skip(skipped, name, f"{name}: {image.file_name} is {image.width} x {image.height} pixels but "
                                     f"<size> says {width} x {height}{turned_hint(image, width, height)}; its objects "
                                     "were skipped.")
                continue
        for number, obj in enumerate(root.iter("object"), start=1):
            budget.take(name)
            box = _voc_object(obj, f"{name} object {number}", image)
            if isinstance(box, str):
                image.skipped_boxes += 1
                skip(skipped, name, box)
            else:
                image.boxes.append(box)
                found.add(box.category)
    return Dataset(index.images, check_class_names(sorted(found), "the VOC files"), {}, skipped)


def write_voc(dataset: Dataset, folder: Path) -> Path:
    """One <image path>.xml per image (also for images without boxes), 0-based pixel corners."""
    folder.mkdir(parents=True, exist_ok=True)
    for image, label in zip(dataset.images, label_names(dataset, ".xml"), strict=True):
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = image.file_name
        size = ET.SubElement(root, "size")
        for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        for box in image.boxes:
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = box.category
            ET.SubElement(obj, "difficult").text = "0"
            if box.score is not None:
                ET.SubElement(obj, "score").text = f"{box.score:.6f}"
            bndbox = ET.SubElement(obj, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box.xyxy, strict=True):
                ET.SubElement(bndbox, tag).text = _num(value)
        ET.indent(root)
        target = folder / label
        target.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
    return folder

