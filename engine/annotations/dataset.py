"""The shared shapes of box annotations (Box, ImageRecord, Dataset) and the checks every format's reader applies.

Boxes are pixels with a top-left origin (COCO's x, y, width, height). A reader keeps every valid part and
lists each bad entry in `Dataset.skipped` with the file and the line, object or id (`skip`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from engine.errors import UserInputError
from engine.limits import (
    class_name_problem,
    max_annotation_bytes,
    max_boxes,
    max_boxes_per_image,
    max_classes,
    quoted,
    too_many,
)
from engine.media import load_image, open_image, quarter_turned
from engine.naming import MAX_NAME_BYTES, distinct_names, truncate_bytes
from engine.weights import human_size

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
    skipped_boxes: int = 0  # its annotations that were skipped (outside it, a bad line): some objects are unboxed

    def load(self) -> Image.Image:
        """The image's pixels (8-bit RGB)."""
        if self.path is None:
            raise UserInputError(f"{self.file_name}: no pixels for this image (it was not uploaded).")
        return load_image(self.path, display_name=self.file_name)


@dataclass
class Dataset:
    """Images with their boxes, the ordered classes, what was skipped on import and why, and `notes` on the images
    used only in part (the first page of a TIFF)."""

    images: list[ImageRecord]
    categories: list[str]
    category_ids: dict[str, int] = field(default_factory=dict)  # COCO ids; YOLO index = position in categories
    skipped: list[dict[str, str]] = field(default_factory=list)
    source_format: str = "none"
    notes: list[str] = field(default_factory=list)

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
def skip(skipped: list[dict[str, str]], file: str, message: str) -> None:
    skipped.append({"file": file, "error": message})


def round_px(value: float) -> float:
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
    return Box(round_px(x), round_px(y), round_px(x1 - x), round_px(y1 - y), category)


def turned_hint(image: ImageRecord, width: object, height: object) -> str:
    """Why annotations may give an image's sides swapped: its EXIF orientation turns it (applied here, as viewers
    do) and the annotation tool read it unturned, so its boxes are in the other orientation. '' otherwise."""
    if (width, height) != (image.height, image.width) or image.path is None:
        return ""
    try:
        with open_image(image.path, image.file_name) as raw:
            if not quarter_turned(raw):
                return ""
    except UserInputError:
        return ""
    return (" (the photo's EXIF orientation turns it by a quarter, and the tool that wrote the annotations did not "
            "turn it: save the photos upright, e.g. with that tool's auto-orient option, and annotate them again)")


def read_annotation_bytes(name: str, path: Path, limit: int | None = None,
                          setting: str = "FEWSHOT_MAX_ANNOTATION_MB") -> bytes:
    """An annotation file's bytes; a file over the size limit is refused before it is read."""
    limit = max_annotation_bytes() if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise UserInputError(f"{name}: {human_size(size)} is more than the {human_size(limit)} accepted for this "
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



class ImageIndex:
    """Uploaded images by relative name, base name and stem, to match the names annotations use; a name
    written in another case (files from Windows or macOS, whose disks ignore case) matches when only one
    image has it."""

    def __init__(self, images: list[ImageRecord]) -> None:
        self.images = images
        self.by_name = {image.file_name: image for image in images}
        self.by_base: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_stem: dict[str, list[ImageRecord]] = defaultdict(list)
        self.by_label_stem: dict[str, list[ImageRecord]] = defaultdict(list)  # only stems a label file cuts
        self.by_folded: dict[str, list[ImageRecord]] = defaultdict(list)  # name, base name and stem, case-folded
        for image in images:
            path = PurePosixPath(image.file_name)
            self.by_base[path.name].append(image)
            self.by_stem[path.stem].append(image)
            if label_stem(path.stem) != path.stem:
                self.by_label_stem[label_stem(path.stem)].append(image)
            for key in (f"path:{image.file_name}", f"base:{path.name}", f"stem:{path.stem}"):
                self.by_folded[key.casefold()].append(image)

    def find(self, name: str) -> ImageRecord | None:
        """The image a file name refers to: exact relative path, else a unique base name, else the same in
        another case."""
        name = name.replace("\\", "/")
        if name in self.by_name:
            return self.by_name[name]
        return _single(self.by_base.get(PurePosixPath(name).name, [])) or self._folded("path", name) \
            or self._folded("base", PurePosixPath(name).name)

    def find_stem(self, label_name: str) -> ImageRecord | None:
        """The image a YOLO/VOC label file belongs to: same stem, unique or in the mirrored folder (or the
        same stem in another case, unique)."""
        path = PurePosixPath(label_name)
        candidates = self.by_stem.get(path.stem) or self.by_label_stem.get(path.stem, [])
        if len(candidates) == 1:
            return candidates[0]
        mirrored = str(path.with_suffix("")).replace("labels/", "images/").replace("Annotations/", "JPEGImages/")
        return next((c for c in candidates if str(PurePosixPath(c.file_name).with_suffix("")) == mirrored), None) \
            or (None if candidates else self._folded("stem", path.stem))

    def missing(self, name: str, stem: bool = False) -> str:
        """Why `find` (or, with `stem`, `find_stem`) found no image for `name`: none has it, or several do."""
        key = PurePosixPath(name.replace("\\", "/"))
        several = self.by_folded.get(f"stem:{key.stem}".casefold() if stem else f"base:{key.name}".casefold(), [])
        if len(several) > 1:
            listed = ", ".join(quoted(image.file_name) for image in several[:3])
            more = f" and {len(several) - 3} more" if len(several) > 3 else ""
            return (f"{len(several)} uploaded images ({listed}{more}) match {quoted(key.stem if stem else key.name)}; "
                    "give the image's folder too, or rename the images apart")
        return (f"no uploaded image has the stem {key.stem!r}" if stem
                else f"{name[:200]} is not among the uploaded images")

    def _folded(self, kind: str, name: str) -> ImageRecord | None:
        return _single(self.by_folded.get(f"{kind}:{name}".casefold(), []))


def _single(candidates: list[ImageRecord]) -> ImageRecord | None:
    return candidates[0] if len(candidates) == 1 else None


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


