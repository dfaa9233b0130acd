"""COCO JSON: one file lists the images, the categories and the boxes (x, y, width, height in pixels)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.annotations.dataset import (
    Dataset,
    ImageIndex,
    ImageRecord,
    checked_box,
    over_image_limit,
    read_annotation_bytes,
    round_px,
    skip,
    turned_hint,
)
from engine.errors import UserInputError
from engine.limits import class_name_problem, max_boxes, max_boxes_per_image, max_classes, quoted, too_many


def _is_id(value: Any) -> bool:
    """COCO ids are whole numbers (some tools write text); anything else cannot key a lookup."""
    return isinstance(value, int | str) and not isinstance(value, bool)


def _is_category_id(value: Any) -> bool:
    """A category id is a whole number; JSON's true is not 1 (annotations' category_id true is refused alike)."""
    return isinstance(value, int) and not isinstance(value, bool)


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


def read_coco(annotation_files: Sequence[tuple[str, Path]], index: ImageIndex,
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
        if not (isinstance(item, dict) and _is_category_id(item.get("id")) and isinstance(item.get("name"), str)):
            skip(skipped, name, f"{name} categories[{position}]: needs an integer \"id\" and a \"name\".")
        elif class_name_problem(item["name"]):
            skip(skipped, name, f"{name} category id {item['id']}: {class_name_problem(item['name'])}.")
        elif item["id"] in categories or item["name"] in categories.values():
            skip(skipped, name, f"{name} category id {item['id']} ({item['name']}): duplicate id or name.")
        else:
            categories[item["id"]] = item["name"]
    per_image = Counter(a["image_id"] for a in annotations if isinstance(a, dict) and _is_id(a.get("image_id")))
    by_id: dict[Any, ImageRecord | None] = {}
    for position, item in enumerate(data["images"]):
        if not isinstance(item, dict) or not _is_id(item.get("id")) or not isinstance(item.get("file_name"), str):
            skip(skipped, name, f"{name} images[{position}]: needs an \"id\" (a whole number) and a \"file_name\".")
            continue
        image = index.find(item["file_name"])
        problem = None
        if image is None:
            problem = index.missing(item["file_name"])
        elif (item.get("width"), item.get("height")) not in ((None, None), (image.width, image.height)):
            problem = (f"{item['file_name']} is {image.width} x {image.height} pixels but the annotations say "
                       f"{quoted(item.get('width'))} x {quoted(item.get('height'))}"
                       + turned_hint(image, item.get("width"), item.get("height")))
        elif image.id is not None:
            problem = f"{item['file_name']} is listed twice (ids {image.id} and {quoted(item['id'])})"
        elif per_image[item["id"]] > max_boxes_per_image():
            problem = over_image_limit(item["file_name"]).removesuffix("; its boxes were skipped.")
        if problem:
            if image is not None:
                image.skipped_boxes += per_image[item["id"]]
            by_id[item["id"]] = None
            skip(skipped, name, f"{name} image id {quoted(item['id'])}: {problem}; its {per_image[item['id']]} "
                                 "annotation(s) were skipped.")
        else:
            image.id = item["id"]
            by_id[item["id"]] = image
    for position, item in enumerate(annotations):
        if not isinstance(item, dict):
            skip(skipped, name, f"{name} annotations[{position}]: not an object.")
            continue
        where = f"{name} annotation id {quoted(item.get('id', '?'))}"
        if not _is_id(item.get("image_id")) or item["image_id"] not in by_id:
            skip(skipped, name, f"{where}: image_id {quoted(item.get('image_id'))} is not in \"images\".")
            continue
        image = by_id[item["image_id"]]
        if image is None:
            continue  # counted with its image
        if not _is_id(item.get("category_id")) or item["category_id"] not in categories:
            image.skipped_boxes += 1
            skip(skipped, name, f"{where}: category_id {quoted(item.get('category_id'))} is not in \"categories\".")
            continue
        bbox = item.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            image.skipped_boxes += 1
            skip(skipped, name, f"{where}: \"bbox\" must be [x, y, width, height], not {quoted(bbox)}.")
            continue
        box = checked_box(*bbox, categories[item["category_id"]], image)
        if isinstance(box, str):
            image.skipped_boxes += 1
            skip(skipped, name, f"{where}: {box}.")
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
                      "bbox": [box.x, box.y, box.width, box.height], "area": round_px(box.width * box.height),
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

