"""Box annotations in COCO JSON, YOLO txt (+ class names) and Pascal VOC XML: read, validate, write.

Reading keeps every valid part: an annotation that names a missing image, a box outside its image
or with no area, an unknown class, a malformed line or file is listed in `Dataset.skipped` with the
file and the line, object or id, and the rest loads. Only a file that cannot be read at all as the
format it claims (e.g. COCO JSON that does not parse) stops the import. Uploaded files are only read.

Boxes are pixels with a top-left origin (COCO's x, y, width, height). Writers emit what the readers
read, so an export imported again gives the same images, boxes and classes.
"""

from __future__ import annotations

import io
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
from engine.filetypes import ANNOTATION_SUFFIXES, IMAGE_SUFFIXES, YAML_SUFFIXES
from engine.limits import (
    class_name_problem,
    max_annotation_bytes,
    max_boxes,
    max_boxes_per_image,
    max_class_name_chars,
    max_classes,
    quoted,
    too_many,
)
from engine.media import load_image
from engine.naming import MAX_NAME_BYTES, distinct_names, truncate_bytes

FORMATS = ("coco", "yolo", "voc")
YOLO_NAME_FILES = ("classes.txt", "obj.names", "classes.names")
EDGE_TOLERANCE_PX = 1.0  # boxes may overshoot the border by this much (rounding in tools); they are clipped
DECIMALS = 4  # pixel coordinates are kept to 1/10000 px, so text round trips are exact
LABEL_SUFFIX_BYTES = 4  # '.txt' and '.xml': a label's stem keeps 251 bytes at most


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
    try:
        values = [float(v) for v in (x, y, width, height)]
    except (OverflowError, TypeError, ValueError):  # e.g. an integer of 400 digits
        values = [math.nan]
    if not all(math.isfinite(v) for v in values):
        return f"the box {quoted([x, y, width, height])} has a value that is not a finite number"
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


def _size_text(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 2**10:,.1f} KB"


def read_annotation_bytes(name: str, path: Path, limit: int | None = None,
                          setting: str = "FEWSHOT_MAX_ANNOTATION_MB") -> bytes:
    """An annotation file's bytes; a file over the size limit is refused before it is read."""
    limit = max_annotation_bytes() if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise UserInputError(f"{name}: {_size_text(size)} is more than the {_size_text(limit)} accepted for this "
                             f"annotation file ({setting}).")
    return path.read_bytes()


def check_class_names(names: Sequence[str], where: str) -> list[str]:
    """The class list of a set, refused (naming the file) when it has too many or too long names."""
    if len(names) > max_classes():
        raise too_many(where, "classes", max_classes(), "FEWSHOT_MAX_CLASSES")
    for position, name in enumerate(names):
        problem = class_name_problem(name)
        if problem:
            raise UserInputError(f"{where} class {position}: {problem}.")
    return list(names)


def over_image_limit(where: str) -> str:
    """Why a file's boxes for one image were skipped: more than FEWSHOT_MAX_BOXES_PER_IMAGE."""
    limit = max_boxes_per_image()
    return (f"{where}: more than {limit:,} boxes in one image; at most {limit:,} are accepted "
            "(FEWSHOT_MAX_BOXES_PER_IMAGE); its boxes were skipped.")


class BoxBudget:
    """Counts the boxes read in a set, valid or not, so that reading stops at FEWSHOT_MAX_BOXES before the
    set (and the skipped list) grows without bound."""

    def __init__(self) -> None:
        self.limit = max_boxes()
        self.count = 0

    def take(self, where: str, count: int = 1) -> None:
        self.count += count
        if self.count > self.limit:
            raise too_many(where, "boxes in one set", self.limit, "FEWSHOT_MAX_BOXES")


def is_annotation_file(name: str) -> bool:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix in ANNOTATION_SUFFIXES


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
        self.by_label_stem: dict[str, list[ImageRecord]] = defaultdict(list)  # only stems a label file cuts
        for image in images:
            path = PurePosixPath(image.file_name)
            self.by_base[path.name].append(image)
            self.by_stem[path.stem].append(image)
            if label_stem(path.stem) != path.stem:
                self.by_label_stem[label_stem(path.stem)].append(image)

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
        candidates = self.by_stem.get(path.stem) or self.by_label_stem.get(path.stem, [])
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
        if suffix in IMAGE_SUFFIXES:
            image_files.append((name, path))
        elif is_annotation_file(name):
            annotation_files.append((name, path))
        else:
            _skip(skipped, name, f"{name}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor an "
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
def _is_id(value: Any) -> bool:
    """COCO ids are whole numbers (some tools write text); anything else cannot key a lookup."""
    return isinstance(value, int | str) and not isinstance(value, bool)


def _coco_json(name: str, path: Path) -> Any:
    """The parsed COCO file, refused while parsing once it lists more boxes or images than a set may hold:
    the hook sees every object as it is decoded, so a million boxes never all reach memory."""
    limit = max_boxes()
    counts = Counter()

    def hook(item: dict[str, Any]) -> dict[str, Any]:
        kind = "boxes" if "bbox" in item else "images" if "file_name" in item else "objects"
        counts[kind] += 1
        if counts[kind] > (limit if kind != "objects" else 4 * limit):
            what = {"boxes": "boxes", "images": "image entries", "objects": "JSON objects"}[kind]
            raise too_many(name, f"{what} in one annotation file", limit if kind != "objects" else 4 * limit,
                           "FEWSHOT_MAX_BOXES")
        return item

    raw = read_annotation_bytes(name, path)
    try:
        return json.loads(raw.decode("utf-8-sig"), object_hook=hook)
    except UserInputError:  # from the hook (a ValueError too, so before the ValueError clause)
        raise
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{name} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}).") from None
    except RecursionError:
        raise UserInputError(f"{name}: nested too deeply to be a COCO file.") from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{name}: cannot be read as UTF-8 text ({exc.reason}).") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise UserInputError(f"{name}: not a COCO file ({str(exc)[:80]}).") from None


def _read_coco(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
               skipped: list[dict[str, str]]) -> Dataset:
    if len(annotation_files) != 1:
        raise UserInputError(f"COCO needs exactly one annotation JSON; got {len(annotation_files)}: "
                             f"{', '.join(n for n, _ in annotation_files)}.")
    name, path = annotation_files[0]
    data = _coco_json(name, path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise UserInputError(f"{name}: not a COCO file; it needs \"images\", \"annotations\" and \"categories\" "
                             "lists.")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise UserInputError(f"{name}: \"annotations\" must be a list.")
    if len(data["categories"]) > max_classes():
        raise too_many(name, "categories", max_classes(), "FEWSHOT_MAX_CLASSES")
    categories: dict[int, str] = {}
    for position, item in enumerate(data["categories"]):
        if not (isinstance(item, dict) and isinstance(item.get("id"), int) and isinstance(item.get("name"), str)):
            _skip(skipped, name, f"{name} categories[{position}]: needs an integer \"id\" and a \"name\".")
        elif class_name_problem(item["name"]):
            _skip(skipped, name, f"{name} category id {item['id']}: {class_name_problem(item['name'])}.")
        elif item["id"] in categories or item["name"] in categories.values():
            _skip(skipped, name, f"{name} category id {item['id']} ({item['name']}): duplicate id or name.")
        else:
            categories[item["id"]] = item["name"]
    per_image = Counter(a["image_id"] for a in annotations if isinstance(a, dict) and _is_id(a.get("image_id")))
    by_id: dict[Any, ImageRecord | None] = {}
    for position, item in enumerate(data["images"]):
        if not isinstance(item, dict) or not _is_id(item.get("id")) or not isinstance(item.get("file_name"), str):
            _skip(skipped, name, f"{name} images[{position}]: needs an \"id\" (a whole number) and a \"file_name\".")
            continue
        image = index.find(item["file_name"])
        problem = None
        if image is None:
            problem = f"{item['file_name'][:200]} is not among the uploaded images"
        elif (item.get("width"), item.get("height")) not in ((None, None), (image.width, image.height)):
            problem = (f"{item['file_name']} is {image.width} x {image.height} pixels but the annotations say "
                       f"{quoted(item.get('width'))} x {quoted(item.get('height'))}")
        elif image.id is not None:
            problem = f"{item['file_name']} is listed twice (ids {image.id} and {quoted(item['id'])})"
        elif per_image[item["id"]] > max_boxes_per_image():
            problem = over_image_limit(item["file_name"]).removesuffix("; its boxes were skipped.")
        if problem:
            by_id[item["id"]] = None
            _skip(skipped, name, f"{name} image id {quoted(item['id'])}: {problem}; its {per_image[item['id']]} "
                                 "annotation(s) were skipped.")
        else:
            image.id = item["id"]
            by_id[item["id"]] = image
    for position, item in enumerate(annotations):
        if not isinstance(item, dict):
            _skip(skipped, name, f"{name} annotations[{position}]: not an object.")
            continue
        where = f"{name} annotation id {quoted(item.get('id', '?'))}"
        if not _is_id(item.get("image_id")) or item["image_id"] not in by_id:
            _skip(skipped, name, f"{where}: image_id {quoted(item.get('image_id'))} is not in \"images\".")
            continue
        image = by_id[item["image_id"]]
        if image is None:
            continue  # counted with its image
        if not _is_id(item.get("category_id")) or item["category_id"] not in categories:
            _skip(skipped, name, f"{where}: category_id {quoted(item.get('category_id'))} is not in \"categories\".")
            continue
        bbox = item.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            _skip(skipped, name, f"{where}: \"bbox\" must be [x, y, width, height], not {quoted(bbox)}.")
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
def names_file_limit() -> int:
    """Bytes a class-names file may have: enough for FEWSHOT_MAX_CLASSES names of FEWSHOT_MAX_CLASS_NAME_CHARS
    characters plus a data.yaml's other keys; YAML is parsed in Python, so it is kept small."""
    return max_classes() * (max_class_name_chars() + 8) + 64 * 2**10


def _yaml_without_aliases(name: str, text: str) -> Any:
    """A YAML document, refused if it uses anchors or aliases (the billion-laughs expansion), checked on
    the parser's events before anything is constructed."""
    import yaml

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise UserInputError(f"{name}: YAML anchors and aliases (&name, *name) are not accepted; write the "
                                     "class names out in full.")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{name}: not valid YAML ({str(exc).splitlines()[0][:120]}).") from None
    except RecursionError:
        raise UserInputError(f"{name}: nested too deeply to be a YOLO data.yaml.") from None


def _yaml_names(name: str, document: Any) -> list[str] | None:
    """The `names:` of a data.yaml (a list, or a mapping from class index to name), None when absent."""
    names = document.get("names") if isinstance(document, dict) else None
    if isinstance(names, dict):
        keys = list(names)
        if any(isinstance(k, bool) or not isinstance(k, int) for k in keys) or sorted(keys) != list(range(len(keys))):
            raise UserInputError(f"{name}: names: the keys must be the class indices 0, 1, 2, … (whole numbers, "
                                 f"each once), not {quoted(keys)}.")
        names = [names[k] for k in range(len(keys))]
    if not isinstance(names, list) or not names:
        return None
    for position, value in enumerate(names):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UserInputError(f"{name} class {position}: a class name must be text, not {quoted(value)}.")
    return [str(n) for n in names]


def _yolo_names(files: Sequence[tuple[str, Path]], skipped: list[dict[str, str]]) -> tuple[list[str], str]:
    """Class names from classes.txt / obj.names (one per line) or data.yaml (`names:` list or mapping)."""
    for name, path in files:
        if PurePosixPath(name).name.lower() in YOLO_NAME_FILES:
            raw = read_annotation_bytes(name, path, names_file_limit(), "FEWSHOT_MAX_CLASSES")
            names = [line.strip() for line in raw.decode("utf-8-sig", errors="replace").splitlines()]
            return check_class_names([n for n in names if n], name), name
    for name, path in files:
        if PurePosixPath(name).suffix.lower() in YAML_SUFFIXES:
            raw = read_annotation_bytes(name, path, names_file_limit(), "FEWSHOT_MAX_CLASSES")
            try:
                document = _yaml_without_aliases(name, raw.decode("utf-8-sig"))
            except UnicodeDecodeError as exc:
                raise UserInputError(f"{name}: cannot be read as UTF-8 text ({exc.reason}).") from None
            names = _yaml_names(name, document)
            if names is None:
                _skip(skipped, name, f"{name}: not a YOLO data.yaml with a names: entry.")
                continue
            return check_class_names(names, name), name
    labels = ", ".join(name for name, _ in files)
    raise UserInputError(f"{labels}: YOLO labels need the class names: add classes.txt (one name per line, in "
                         "class-index order) or a data.yaml with names:.")


def _yolo_label(name: str, path: Path, image: ImageRecord, names: list[str], names_file: str,
                budget: BoxBudget, skipped: list[dict[str, str]]) -> None:
    """One label file's boxes onto its image; a file of more lines than an image may have boxes is skipped
    whole, as soon as the count is passed."""
    try:
        text = read_annotation_bytes(name, path).decode("utf-8-sig", errors="replace")
    except UserInputError as exc:
        _skip(skipped, name, f"{exc} Its labels were skipped.")
        return
    boxes: list[Box] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{name} line {number}"
        if len(boxes) + len(problems) >= max_boxes_per_image():
            _skip(skipped, name, over_image_limit(name))
            return
        budget.take(name)
        if len(fields) not in (5, 6):
            shape = "a segmentation polygon" if len(fields) > 6 else f"{len(fields)} values"
            problems.append(f"{where}: expected 'class x_center y_center width height', got {shape}.")
            continue
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:5])
        except ValueError:
            problems.append(f"{where}: {quoted(line.strip())} is not a class index and four numbers.")
            continue
        if not 0 <= cls < len(names):
            problems.append(f"{where}: class {quoted(cls)} is not in {names_file} (0 to {len(names) - 1}).")
            continue
        box = checked_box((cx - w / 2) * image.width, (cy - h / 2) * image.height, w * image.width,
                          h * image.height, names[cls], image)
        if isinstance(box, str):
            problems.append(f"{where}: {box}.")
        else:
            boxes.append(box)
    image.boxes.extend(boxes)
    for problem in problems:
        _skip(skipped, name, problem)


def _read_yolo(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
               skipped: list[dict[str, str]]) -> Dataset:
    names, names_file = _yolo_names(annotation_files, skipped)
    duplicates = [n for n, count in Counter(names).items() if count > 1]
    if duplicates:
        raise UserInputError(f"{names_file}: class name {duplicates[0]!r} appears twice.")
    budget = BoxBudget()
    for name, path in annotation_files:
        if PurePosixPath(name).suffix.lower() != ".txt" or PurePosixPath(name).name.lower() in YOLO_NAME_FILES:
            continue
        image = index.find_stem(name)
        if image is None:
            _skip(skipped, name, f"{name}: no uploaded image has the stem {PurePosixPath(name).stem!r}; "
                                 "its labels were skipped.")
            continue
        _yolo_label(name, path, image, names, names_file, budget, skipped)
    return Dataset(index.images, names, {}, skipped)


def _num(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a decimal point."""
    value = _round(value)
    return str(int(value)) if value == int(value) else repr(value)


def label_stem(stem: str) -> str:
    """The stem a label file of an image with this stem has: cut to fit a file name with its suffix, so an
    image named at the 255-byte limit (or longer, through the API) still gets a label that reads back."""
    return truncate_bytes(stem, MAX_NAME_BYTES - LABEL_SUFFIX_BYTES)


def label_name(image: ImageRecord, suffix: str) -> str:
    """Relative path of an image's label file: the image's path with another suffix, its stem bounded."""
    if len(suffix.encode("utf-8")) > LABEL_SUFFIX_BYTES:
        raise ValueError(f"label suffixes have at most {LABEL_SUFFIX_BYTES} bytes, not {suffix!r}")
    path = PurePosixPath(image.file_name)
    return str(path.with_name(label_stem(path.stem) + suffix))


def label_names(dataset: Dataset, suffix: str) -> list[str]:
    """Each image's label path, told apart where two images would share one ('a.png' and 'a.jpg', or long
    names alike in their first 251 bytes), so no label overwrites another."""
    return distinct_names(label_name(image, suffix) for image in dataset.images)


def write_yolo(dataset: Dataset, folder: Path) -> Path:
    """labels/<image path>.txt (class x_center y_center width height, normalised) and classes.txt."""
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{n}\n" for n in dataset.categories))
    for image, label in zip(dataset.images, label_names(dataset, ".txt"), strict=True):
        lines = []
        for box in image.boxes:
            values = ((box.x + box.width / 2) / image.width, (box.y + box.height / 2) / image.height,
                      box.width / image.width, box.height / image.height)
            lines.append(" ".join([str(dataset.categories.index(box.category)), *(f"{v:.12g}" for v in values)]))
        target = folder / "labels" / label
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{line}\n" for line in lines))
    return folder


# -- Pascal VOC -------------------------------------------------------------------------------
_UNSAFE_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
VOC_ELEMENTS_PER_BOX = 16  # <object> with name, pose, truncated, difficult, bndbox and four corners, and slack


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


def _read_voc(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
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
            _skip(skipped, name, str(exc))
            continue
        if root.tag != "annotation":
            _skip(skipped, name, f"{name}: the root element is <{quoted(root.tag)}>, not a Pascal VOC <annotation>.")
            continue
        declared = (root.findtext("filename") or "").strip()
        image = (index.find(declared) if declared else None) or index.find_stem(name)
        if image is None:
            _skip(skipped, name, f"{name}: its image {quoted(declared or PurePosixPath(name).stem)} is not among "
                                 "the uploaded images; its objects were skipped.")
            continue
        size = root.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            try:
                width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            except (OverflowError, ValueError):
                width, height = image.width, image.height
            if (width, height) != (image.width, image.height):
                _skip(skipped, name, f"{name}: {image.file_name} is {image.width} x {image.height} pixels but "
                                     f"<size> says {width} x {height}; its objects were skipped.")
                continue
        for number, obj in enumerate(root.iter("object"), start=1):
            budget.take(name)
            box = _voc_object(obj, f"{name} object {number}", image)
            if isinstance(box, str):
                _skip(skipped, name, box)
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


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip a folder's files with paths relative to it (for downloads)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            bundle.write(path, str(path.relative_to(folder)))
    return archive
