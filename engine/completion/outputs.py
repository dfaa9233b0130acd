"""Files of a completion run, the same for jobs and the CLI, and the export of a reviewed set.

proposals.json holds every proposal down to the run's minimum score, with its score and exemplar,
so a review can move its threshold and accept or reject boxes without running the model again.
Torch-free: the review export runs in the web process.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.annotations.coco import write_coco
from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.annotations.voc import write_voc
from engine.annotations.yolo import write_yolo
from engine.media import load_image
from engine.naming import file_key

if TYPE_CHECKING:
    from engine.completion.pipeline import CompletionResult

PROPOSALS_FILE = "proposals.json"
PREVIEW_MAX_SIDE = 1280


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip a folder's files with paths relative to it (for downloads)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            bundle.write(path, str(path.relative_to(folder)))
    return archive


def write_exports(dataset: Dataset, out_dir: Path, stem: str) -> list[str]:
    """The set as COCO JSON, a YOLO zip (labels/ + classes.txt) and a Pascal VOC zip; returns the names."""
    names = {"coco": f"{stem}_coco.json", "yolo": f"{stem}_yolo.zip", "voc": f"{stem}_voc.zip"}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_coco(dataset, out_dir / names["coco"])
    with tempfile.TemporaryDirectory() as tmp:
        zip_folder(write_yolo(dataset, Path(tmp) / "yolo"), out_dir / names["yolo"])
        zip_folder(write_voc(dataset, Path(tmp) / "voc"), out_dir / names["voc"])
    return list(names.values())


def write_previews(out_dir: Path, dataset: Dataset) -> dict[str, tuple[str, float]]:
    """A JPEG per image for the review page, longest side at most PREVIEW_MAX_SIDE: {file: (name, scale)}."""
    previews = {}
    for index, image in enumerate(dataset.images):
        if image.path is None:
            continue
        picture = load_image(image.path, display_name=image.file_name)
        scale = min(1.0, PREVIEW_MAX_SIDE / max(picture.size))
        if scale < 1.0:
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
        name = file_key(image.file_name, index, ".jpg", prefix="preview_", width=4)
        picture.save(out_dir / name, quality=90)
        previews[image.file_name] = (name, scale)
    return previews


def proposals_document(result: CompletionResult, summary: dict[str, Any],
                       previews: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """Everything a review needs: images with existing boxes and all proposals, classes, exemplars."""
    dataset = result.dataset
    images = []
    for image in dataset.images:
        preview, scale = previews.get(image.file_name, (None, 1.0))
        images.append({
            "file": image.file_name, "id": image.id, "width": image.width, "height": image.height,
            "preview": preview, "preview_scale": scale,
            "existing": [{"box": [b.x, b.y, b.width, b.height], "category": b.category} for b in image.boxes],
            "proposals": [p.to_dict() for p in result.proposals.get(image.file_name, [])],
        })
    exemplars = [{k: v for k, v in asdict(e).items() if v is not None} for e in result.exemplars]
    return {**summary, "params": result.params.selection(), "categories": dataset.categories,
            "category_ids": dataset.category_ids, "source_format": dataset.source_format,
            "exemplars": exemplars, "images": images, "skipped": dataset.skipped}


def accepted_dataset(document: dict[str, Any], accepted: Collection[int],
                     edited: dict[str, dict[str, Any]] | None = None,
                     added: list[dict[str, Any]] | None = None) -> Dataset:
    """The existing boxes plus the accepted proposals (by id; an `edited` one, keyed by its id as text, with the
    box and class the reviewer gave it) and the boxes the reviewer `added`, as a dataset to export."""
    accepted, edited, added = set(accepted), edited or {}, added or []
    categories = list(document["categories"])
    images = []
    for item in document["images"]:
        boxes = [Box(*e["box"], e["category"]) for e in item["existing"]]
        for p in item["proposals"]:
            if p["id"] in accepted:
                change = edited.get(str(p["id"]), {})
                boxes.append(Box(*change.get("box", p["box"]), change.get("category", p["category"]), p["score"]))
        boxes += [Box(*a["box"], a["category"]) for a in added if a["image"] == item["file"]]
        categories = list(dict.fromkeys([*categories, *(b.category for b in boxes)]))  # a new class a reviewer typed
        images.append(ImageRecord(item["file"], item["width"], item["height"], boxes, id=item["id"]))
    return Dataset(images, categories, dict(document["category_ids"]))


def ids_above(document: dict[str, Any], threshold: float) -> list[int]:
    """Ids of the proposals scoring at or above a threshold."""
    return [p["id"] for item in document["images"] for p in item["proposals"] if p["score"] >= threshold]


def write_outputs(out_dir: Path, result: CompletionResult, summary: dict[str, Any],
                  score_threshold: float) -> list[str]:
    """proposals.json, review previews, and the set completed with every proposal >= `score_threshold`; returns
    the names written, in the order they are shown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    previews = write_previews(out_dir, result.dataset)
    document = proposals_document(result, summary, previews)
    (out_dir / PROPOSALS_FILE).write_text(json.dumps(document, indent=1))
    exports = write_exports(accepted_dataset(document, ids_above(document, score_threshold)), out_dir, "completed")
    return [PROPOSALS_FILE, *(name for name, _ in previews.values()), *exports]
