"""YOLO txt: one label file per image (class x_center y_center width height, fractions of the image) and
the class names in classes.txt / obj.names or a data.yaml."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

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
    skip,
)
from engine.errors import UserInputError
from engine.filetypes import YAML_SUFFIXES
from engine.limits import max_boxes_per_image, max_class_name_chars, max_classes, quoted

YOLO_NAME_FILES = ("classes.txt", "obj.names", "classes.names")


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
                skip(skipped, name, f"{name}: not a YOLO data.yaml with a names: entry.")
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
        skip(skipped, name, f"{exc} Its labels were skipped.")
        return
    boxes: list[Box] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{name} line {number}"
        if len(boxes) + len(problems) >= max_boxes_per_image():
            image.skipped_boxes += len(boxes) + len(problems) + 1
            skip(skipped, name, over_image_limit(name))
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
    image.skipped_boxes += len(problems)
    for problem in problems:
        skip(skipped, name, problem)


def read_yolo(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
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
            skip(skipped, name, f"{name}: {index.missing(name, stem=True)}; its labels were skipped.")
            continue
        _yolo_label(name, path, image, names, names_file, budget, skipped)
    return Dataset(index.images, names, {}, skipped)




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

