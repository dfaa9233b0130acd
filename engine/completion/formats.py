"""Box annotations in COCO JSON, YOLO txt (+ class names) and Pascal VOC XML: read, validate, write.

Reading keeps every valid part: an annotation that names a missing image, a box outside its image
or with no area, an unknown class, a malformed line or file is listed in `Dataset.skipped` with the
file and the line, object or id, and the rest loads. Only a file that cannot be read at all as the
format it claims (e.g. COCO JSON that does not parse) stops the import. Uploaded files are only read.

Boxes are pixels with a top-left origin (COCO's x, y, width, height). Writers emit what the readers
read, so an export imported again gives the same images, boxes and classes.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from engine.errors import UserInputError
from engine.media import ACCEPTED_IMAGE_SUFFIXES, load_image

FORMATS = ("coco", "yolo", "voc")
YOLO_NAME_FILES = ("classes.txt", "obj.names", "classes.names")
YAML_SUFFIXES = (".yaml", ".yml")
EDGE_TOLERANCE_PX = 1.0  # boxes may overshoot the border by this much (rounding in tools); they are clipped
DECIMALS = 4  # pixel coordinates are kept to 1/10000 px, so text round trips are exact


@dataclass(frozen=True)
class Box:
    """One box in pixels; `score` is None for an annotation and set for a proposal."""

    x: float
    y: float
    width: float
    height: float
    category: str
    score: float | None = None

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.width, self.y + self.height


@dataclass
class ImageRecord:
    """An image of the set: its name (relative path as uploaded), size, boxes and where its pixels are."""

    file_name: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    path: Path | None = None
    id: int | None = None  # the COCO image id, kept for round trips

    def load(self) -> Image.Image:
        """The image's pixels (8-bit RGB)."""
        if self.path is None:
            raise UserInputError(f"{self.file_name}: no pixels for this image (it was not uploaded).")
        return load_image(self.path, display_name=self.file_name)


@dataclass
class Dataset:
    """Images with their boxes, the ordered classes, and what was skipped on import and why."""

    images: list[ImageRecord]
    categories: list[str]
    category_ids: dict[str, int] = field(default_factory=dict)  # COCO ids; YOLO index = position in categories
    skipped: list[dict[str, str]] = field(default_factory=list)
    source_format: str = "none"

    def coco_id(self, name: str) -> int:
        """The COCO id of a class: its imported id, else the next free ids in class order."""
        if name in self.category_ids:
            return self.category_ids[name]
        new = [n for n in self.categories if n not in self.category_ids]
        return max(self.category_ids.values(), default=0) + 1 + new.index(name)

    @property
    def box_count(self) -> int:
        return sum(len(image.boxes) for image in self.images)

    def skipped_note(self, limit: int = 5) -> str:
        """The reasons files were skipped (' Skipped: …'), for messages that must say why an import came out
        empty; '' when nothing was skipped."""
        reasons = " ".join(item["error"] for item in self.skipped[:limit])
        more = f" (and {len(self.skipped) - limit} more)" if len(self.skipped) > limit else ""
        return f" Skipped: {reasons}{more}" if reasons else ""


# -- shared checks ----------------------------------------------------------------------------
def _skip(skipped: list[dict[str, str]], file: str, message: str) -> None:
    skipped.append({"file": file, "error": message})


def _round(value: float) -> float:
    return round(float(value), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def checked_box(x: float, y: float, width: float, height: float, category: str,
                image: ImageRecord) -> Box | str:
    """A valid box (clipped within the edge tolerance), or the reason it is not one."""
    values = [float(v) for v in (x, y, width, height)]
    if not all(math.isfinite(v) for v in values):
        return f"the box {values} has a value that is not a finite number"
    x, y, width, height = values
    if width <= 0 or height <= 0:
        return f"the box has zero or negative size ({width:g} x {height:g} px)"
    x1, y1 = x + width, y + height
    tol = EDGE_TOLERANCE_PX
    if x < -tol or y < -tol or x1 > image.width + tol or y1 > image.height + tol:
        return (f"the box ({x:g}, {y:g}) to ({x1:g}, {y1:g}) lies outside the {image.width} x {image.height} "
                f"image {image.file_name}")
    x, y = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x1, image.width), min(y1, image.height)
    return Box(_round(x), _round(y), _round(x1 - x), _round(y1 - y), category)


def is_annotation_file(name: str) -> bool:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix in (".json", ".xml", ".txt", ".names", *YAML_SUFFIXES)


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


class ImageIndex:
    """Uploaded images by relative name, base name and stem, to match the names annotations use."""

    def __init__(self, images: list[ImageRecord]) -> None:
        self.images = images
        self.by_name = {image.file_name: image for image in images}
        self.by_base: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_stem: dict[str, list[ImageRecord]] = defaultdict(list)
        for image in images:
            path = PurePosixPath(image.file_name)
            self.by_base[path.name].append(image)
            self.by_stem[path.stem].append(image)

    def find(self, name: str) -> ImageRecord | None:
        """The image a file name refers to: exact relative path, else a unique base name."""
        name = name.replace("\\", "/")
        if name in self.by_name:
            return self.by_name[name]
        candidates = self.by_base.get(PurePosixPath(name).name, [])
        return candidates[0] if len(candidates) == 1 else None

    def find_stem(self, label_name: str) -> ImageRecord | None:
        """The image a YOLO/VOC label file belongs to: same stem, unique or in the mirrored folder."""
        path = PurePosixPath(label_name)
        candidates = self.by_stem.get(path.stem, [])
        if len(candidates) == 1:
            return candidates[0]
        mirrored = str(path.with_suffix("")).replace("labels/", "images/").replace("Annotations/", "JPEGImages/")
        return next((c for c in candidates if str(PurePosixPath(c.file_name).with_suffix("")) == mirrored), None)


def probe_images(files: Sequence[tuple[str, Path]], skipped: list[dict[str, str]]) -> list[ImageRecord]:
    """Decode each image once (the same checks as every upload) to learn its size; bad ones are skipped."""
    images = []
    for name, path in files:
        try:
            with load_image(path, display_name=name) as decoded:
                images.append(ImageRecord(name, decoded.width, decoded.height, path=path))
        except UserInputError as exc:
            _skip(skipped, name, str(exc))
    return images


def read_dataset(files: Sequence[tuple[str, Path]], format: str = "auto", source: str = "the upload") -> Dataset:
    """A dataset from uploaded files: images plus annotation files in one format ("auto" detects it).

    `files` are (name relative to the upload or archive root, path); `source` names the uploads in
    messages. Images with no annotation are part of the set, with no boxes: they are the ones to complete.
    """
    skipped: list[dict[str, str]] = []
    image_files, annotation_files = [], []
    for name, path in files:
        if _ignored(name):
            continue
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in ACCEPTED_IMAGE_SUFFIXES:
            image_files.append((name, path))
        elif is_annotation_file(name):
            annotation_files.append((name, path))
        else:
            _skip(skipped, name, f"{name}: neither an image ({', '.join(ACCEPTED_IMAGE_SUFFIXES)}) nor an "
                                 "annotation file (.json, .txt, .xml, classes.txt, data.yaml); ignored.")
    duplicates = [n for n, count in Counter(n for n, _ in image_files).items() if count > 1]
    if duplicates:
        raise UserInputError(f"Two uploaded images are both named {duplicates[0]!r}; rename one of them.")
    images = probe_images(image_files, skipped)
    if not images:
        reasons = " ".join(item["error"] for item in skipped)
        raise UserInputError(f"No usable images in {source}. {reasons}".strip())
    chosen = detect_format(annotation_files) if format == "auto" else format
    index = ImageIndex(images)
    if chosen == "coco":
        dataset = _read_coco(annotation_files, index, skipped)
    elif chosen == "yolo":
        dataset = _read_yolo(annotation_files, index, skipped)
    elif chosen == "voc":
        dataset = _read_voc(annotation_files, index, skipped)
    elif chosen == "none":
        dataset = Dataset(images, [], skipped=skipped)
    else:
        raise UserInputError(f"Unknown annotation format {format!r}; accepted: auto, {', '.join(FORMATS)}.")
    dataset.source_format = chosen
    return dataset


def detect_format(annotation_files: Sequence[tuple[str, Path]]) -> str:
    """coco, yolo, voc or none, from the annotation files' suffixes; mixing formats is refused."""
    suffixes = {PurePosixPath(name).suffix.lower() for name, _ in annotation_files}
    found = [fmt for fmt, members in (("coco", {".json"}), ("yolo", {".txt", ".names", *YAML_SUFFIXES}),
                                      ("voc", {".xml"})) if suffixes & members]
    if len(found) > 1:
        raise UserInputError(f"The upload mixes annotation formats ({', '.join(found)}): give one format, "
                             "COCO JSON, YOLO txt with class names, or Pascal VOC XML.")
    return found[0] if found else "none"


# -- COCO -------------------------------------------------------------------------------------
def _read_coco(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
               skipped: list[dict[str, str]]) -> Dataset:
    if len(annotation_files) != 1:
        raise UserInputError(f"COCO needs exactly one annotation JSON; got {len(annotation_files)}: "
                             f"{', '.join(n for n, _ in annotation_files)}.")
    name, path = annotation_files[0]
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{name} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}).") from None
    except RecursionError:
        raise UserInputError(f"{name}: nested too deeply to be a COCO file.") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise UserInputError(f"{name}: cannot be read as UTF-8 text ({exc}).") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise UserInputError(f"{name}: not a COCO file; it needs \"images\", \"annotations\" and \"categories\" "
                             "lists.")
    categories: dict[int, str] = {}
    for position, item in enumerate(data["categories"]):
        if not (isinstance(item, dict) and isinstance(item.get("id"), int) and isinstance(item.get("name"), str)):
            _skip(skipped, name, f"{name} categories[{position}]: needs an integer \"id\" and a \"name\".")
        elif item["id"] in categories or item["name"] in categories.values():
            _skip(skipped, name, f"{name} category id {item['id']} ({item['name']}): duplicate id or name.")
        else:
            categories[item["id"]] = item["name"]
    by_id: dict[Any, ImageRecord | None] = {}
    for position, item in enumerate(data["images"]):
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("file_name"), str):
            _skip(skipped, name, f"{name} images[{position}]: needs an \"id\" and a \"file_name\".")
            continue
        image = index.find(item["file_name"])
        problem = None
        if image is None:
            problem = f"{item['file_name']} is not among the uploaded images"
        elif (item.get("width"), item.get("height")) not in ((None, None), (image.width, image.height)):
            problem = (f"{item['file_name']} is {image.width} x {image.height} pixels but the annotations say "
                       f"{item.get('width')} x {item.get('height')}")
        elif image.id is not None:
            problem = f"{item['file_name']} is listed twice (ids {image.id} and {item['id']})"
        if problem:
            by_id[item["id"]] = None
            count = sum(1 for a in data.get("annotations") or [] if isinstance(a, dict)
                        and a.get("image_id") == item["id"])
            _skip(skipped, name, f"{name} image id {item['id']}: {problem}; its {count} annotation(s) were skipped.")
        else:
            image.id = item["id"]
            by_id[item["id"]] = image
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise UserInputError(f"{name}: \"annotations\" must be a list.")
    for position, item in enumerate(annotations):
        if not isinstance(item, dict):
            _skip(skipped, name, f"{name} annotations[{position}]: not an object.")
            continue
        where = f"{name} annotation id {item.get('id', '?')}"
        if item.get("image_id") not in by_id:
            _skip(skipped, name, f"{where}: image_id {item.get('image_id')!r} is not in \"images\".")
            continue
        image = by_id[item["image_id"]]
        if image is None:
            continue  # counted with its image
        if item.get("category_id") not in categories:
            _skip(skipped, name, f"{where}: category_id {item.get('category_id')!r} is not in \"categories\".")
            continue
        bbox = item.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            _skip(skipped, name, f"{where}: \"bbox\" must be [x, y, width, height], not {bbox!r}.")
            continue
        box = checked_box(*bbox, categories[item["category_id"]], image)
        if isinstance(box, str):
            _skip(skipped, name, f"{where}: {box}.")
        else:
            image.boxes.append(box)
    next_id = max((i.id for i in index.images if isinstance(i.id, int)), default=0) + 1
    for image in index.images:
        if image.id is None:
            image.id, next_id = next_id, next_id + 1
    ordered = sorted(categories.items())
    return Dataset(index.images, [n for _, n in ordered], {n: i for i, n in ordered}, skipped)


def to_coco(dataset: Dataset) -> dict[str, Any]:
    """The dataset as a COCO dict; proposals keep their score."""
    images, annotations = [], []
    for position, image in enumerate(dataset.images):
        image_id = image.id if image.id is not None else position + 1
        images.append({"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height})
        for box in image.boxes:
            record = {"id": len(annotations) + 1, "image_id": image_id, "category_id": dataset.coco_id(box.category),
                      "bbox": [box.x, box.y, box.width, box.height], "area": _round(box.width * box.height),
                      "iscrowd": 0}
            if box.score is not None:
                record["score"] = round(box.score, 6)
            annotations.append(record)
    categories = [{"id": dataset.coco_id(n), "name": n} for n in dataset.categories]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(dataset: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_coco(dataset), indent=1))
    return path


# -- YOLO -------------------------------------------------------------------------------------
def _yolo_names(files: Sequence[tuple[str, Path]], skipped: list[dict[str, str]]) -> tuple[list[str], str]:
    """Class names from classes.txt / obj.names (one per line) or data.yaml (`names:` list or mapping)."""
    for name, path in files:
        if PurePosixPath(name).name.lower() in YOLO_NAME_FILES:
            names = [line.strip() for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines()]
            return [n for n in names if n], name
    for name, path in files:
        if PurePosixPath(name).suffix.lower() in YAML_SUFFIXES:
            import yaml

            try:
                names = (yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}).get("names")
            except (yaml.YAMLError, AttributeError) as exc:
                _skip(skipped, name, f"{name}: not a YOLO data.yaml with a names: entry ({exc}).")
                continue
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names)]
            if isinstance(names, list) and names:
                return [str(n) for n in names], name
    labels = ", ".join(name for name, _ in files)
    raise UserInputError(f"{labels}: YOLO labels need the class names: add classes.txt (one name per line, in "
                         "class-index order) or a data.yaml with names:.")


def _read_yolo(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
               skipped: list[dict[str, str]]) -> Dataset:
    names, names_file = _yolo_names(annotation_files, skipped)
    duplicates = [n for n, count in Counter(names).items() if count > 1]
    if duplicates:
        raise UserInputError(f"{names_file}: class name {duplicates[0]!r} appears twice.")
    for name, path in annotation_files:
        if PurePosixPath(name).suffix.lower() != ".txt" or PurePosixPath(name).name.lower() in YOLO_NAME_FILES:
            continue
        image = index.find_stem(name)
        if image is None:
            _skip(skipped, name, f"{name}: no uploaded image has the stem {PurePosixPath(name).stem!r}; "
                                 "its labels were skipped.")
            continue
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{name} line {number}"
            if len(fields) not in (5, 6):
                shape = "a segmentation polygon" if len(fields) > 6 else f"{len(fields)} values"
                _skip(skipped, name, f"{where}: expected 'class x_center y_center width height', got {shape}.")
                continue
            try:
                cls = int(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:5])
            except ValueError:
                _skip(skipped, name, f"{where}: {line.strip()!r} is not a class index and four numbers.")
                continue
            if not 0 <= cls < len(names):
                _skip(skipped, name, f"{where}: class {cls} is not in {names_file} (0 to {len(names) - 1}).")
                continue
            box = checked_box((cx - w / 2) * image.width, (cy - h / 2) * image.height, w * image.width,
                              h * image.height, names[cls], image)
            if isinstance(box, str):
                _skip(skipped, name, f"{where}: {box}.")
            else:
                image.boxes.append(box)
    return Dataset(index.images, names, {}, skipped)


def _num(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a decimal point."""
    value = _round(value)
    return str(int(value)) if value == int(value) else repr(value)


def label_name(image: ImageRecord, suffix: str) -> str:
    """Relative path of an image's label file: the image's path with another suffix."""
    return str(PurePosixPath(image.file_name).with_suffix(suffix))


def write_yolo(dataset: Dataset, folder: Path) -> Path:
    """labels/<image path>.txt (class x_center y_center width height, normalised) and classes.txt."""
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{n}\n" for n in dataset.categories))
    for image in dataset.images:
        lines = []
        for box in image.boxes:
            values = ((box.x + box.width / 2) / image.width, (box.y + box.height / 2) / image.height,
                      box.width / image.width, box.height / image.height)
            lines.append(" ".join([str(dataset.categories.index(box.category)), *(f"{v:.12g}" for v in values)]))
        target = folder / "labels" / label_name(image, ".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{line}\n" for line in lines))
    return folder


# -- Pascal VOC -------------------------------------------------------------------------------
_UNSAFE_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def _read_voc(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
              skipped: list[dict[str, str]]) -> Dataset:
    found: set[str] = set()
    for name, path in annotation_files:
        if PurePosixPath(name).suffix.lower() != ".xml":
            continue
        raw = path.read_bytes()
        if _UNSAFE_XML.search(raw):
            _skip(skipped, name, f"{name}: XML with a DOCTYPE or entity declarations is not accepted.")
            continue
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            line, column = exc.position
            _skip(skipped, name, f"{name} line {line} column {column}: not well-formed XML.")
            continue
        if root.tag != "annotation":
            _skip(skipped, name, f"{name}: the root element is <{root.tag}>, not a Pascal VOC <annotation>.")
            continue
        declared = (root.findtext("filename") or "").strip()
        image = (index.find(declared) if declared else None) or index.find_stem(name)
        if image is None:
            _skip(skipped, name, f"{name}: its image {declared or PurePosixPath(name).stem!r} is not among the "
                                 "uploaded images; its objects were skipped.")
            continue
        size = root.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            try:
                width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            except ValueError:
                width, height = image.width, image.height
            if (width, height) != (image.width, image.height):
                _skip(skipped, name, f"{name}: {image.file_name} is {image.width} x {image.height} pixels but "
                                     f"<size> says {width} x {height}; its objects were skipped.")
                continue
        for number, obj in enumerate(root.iter("object"), start=1):
            where = f"{name} object {number}"
            category = (obj.findtext("name") or "").strip()
            bndbox = obj.find("bndbox")
            if not category or bndbox is None:
                _skip(skipped, name, f"{where}: needs a <name> and a <bndbox>.")
                continue
            try:
                x0, y0, x1, y1 = (float(bndbox.findtext(tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                _skip(skipped, name, f"{where}: <bndbox> needs numeric xmin, ymin, xmax and ymax.")
                continue
            box = checked_box(x0, y0, x1 - x0, y1 - y0, category, image)
            if isinstance(box, str):
                _skip(skipped, name, f"{where}: {box}.")
            else:
                image.boxes.append(box)
                found.add(category)
    return Dataset(index.images, sorted(found), {}, skipped)


def write_voc(dataset: Dataset, folder: Path) -> Path:
    """One <image path>.xml per image (also for images without boxes), 0-based pixel corners."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in dataset.images:
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
        target = folder / label_name(image, ".xml")
        target.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip a folder's files with paths relative to it (for downloads)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            bundle.write(path, str(path.relative_to(folder)))
    return archive
