"""Whole detection runs shared by the CLI and the jobs: train + evaluate against the baseline + save, and
detecting boxes on new images with a saved detector."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from engine.annotations.dataset import Box, Dataset
from engine.device import select_device
from engine.errors import UserInputError
from engine.finetune.artifacts import MODEL_DIR, write_run_outputs
from engine.finetune.detection.data import split_held_out
from engine.finetune.detection.model import build_detector, load_detector, save_detector
from engine.finetune.detection.train import DetectSettings, targets_of, train
from engine.finetune.loop import HistoryCallback
from engine.media import decoded
from engine.naming import file_key
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress

PREDICTIONS_FILE = "detections.json"


def train_and_save(dataset: Dataset, preset: str, settings: DetectSettings, out_dir: Path, name: str,
                   device: str | None = None, progress: ProgressCallback = ignore_progress,
                   on_history: HistoryCallback | None = None) -> tuple[dict[str, Any], list[str]]:
    """Split, train, compare with the pre-fine-tuning baseline and write `model/`, metrics.json, history.csv
    and model.zip.

    The baseline is the base model with its new class head before any step, on the same held-out images.
    Nothing is written if training fails (e.g. diverges); a cancelled run saves its best checkpoint.
    """
    settings = settings.check().for_preset(preset)
    torch_device = select_device(device)
    train_idx, held_idx = split_held_out(dataset, settings.held_out_fraction, settings.seed)
    train_images = [dataset.images[i] for i in train_idx]
    held_images = [dataset.images[i] for i in held_idx]
    progress(0.01, f"Loading model {get_preset(preset).label}")
    detector = build_detector(preset, dataset.categories, torch_device, settings.train_backbone, settings.seed)
    progress(0.03, f"Preparing {len(train_images)} training and {len(held_images)} held-out images")
    train_x = detector.spec.encode(image.load() for image in train_images)
    held_x = detector.spec.encode(image.load() for image in held_images) if held_images else train_x[:0]
    result = train(detector, train_x, targets_of(train_images, detector.classes), held_x, held_images, settings,
                   sub_progress(progress, 0.05, 0.97), on_history)
    notes = []
    if not held_images:
        notes.append("Too few images to hold any out (every class must keep a box to train on): no mAP is "
                     "reported and the last step was kept. Add annotated images.")
    summary = {
        "name": name, "task": "detect", "classes": detector.classes, "base_preset": preset,
        "random_weights": get_preset(preset).random_weights, "settings": settings.to_dict(),
        "train_images": len(train_images), "held_out_images": len(held_images),
        "train_boxes": sum(len(image.boxes) for image in train_images),
        "held_out": [image.file_name for image in held_images],
        "metrics": {"baseline": result.baseline, "fine_tuned": result.best},
        "best_step": result.best_step, "steps_run": result.steps_run, "stopped": result.stopped,
        "seconds": round(result.seconds, 3), "history": result.history, "skipped": dataset.skipped, "notes": notes,
        "device": str(torch_device), "created_at": time.time(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {k: summary[k] for k in ("name", "settings", "metrics", "best_step", "stopped", "train_images",
                                    "held_out_images", "created_at")}
    save_detector(detector, out_dir / MODEL_DIR, meta)
    return summary, write_run_outputs(out_dir, summary)


class DetectionPredictor:
    """A saved detector loaded once, finding boxes on batches of images."""

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        self.detector, self.meta = load_detector(model_dir, select_device(device))

    @property
    def classes(self) -> list[str]:
        return self.detector.classes

    def __call__(self, images: Sequence[Image.Image], min_score: float = 0.0) -> list[list[Box]]:
        """Boxes of each image scoring at least `min_score`, best first, in the image's pixels."""
        found = self.detector.detect(self.detector.spec.encode(images), [image.size for image in images])
        return [[box for box in boxes if (box.score or 0.0) >= min_score] for boxes in found]


def box_dict(box: Box) -> dict[str, Any]:
    return {"box": [round(v, 2) for v in (box.x, box.y, box.width, box.height)], "category": box.category,
            "score": round(box.score or 0.0, 6)}


def predict_files(model_dir: Path, files: Sequence[tuple[str, Path]], out_dir: Path, score_threshold: float = 0.5,
                  device: str | None = None, batch_size: int = 8, skipped: Sequence[dict[str, str]] = (),
                  progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], list[str]]:
    """Detect boxes scoring at least `score_threshold` on images (a few decoded at a time); write a picture with
    the boxes drawn per image and detections.json. Unreadable images join `skipped` (files already left out)."""
    from engine.video import batched
    from engine.visualize import draw_boxes

    if not 0.0 <= score_threshold <= 1.0:
        raise UserInputError(f"The score threshold must be between 0 and 1, not {score_threshold}.")
    if not files:
        raise UserInputError("No images given: upload images (or a zip of them) to detect boxes on.")
    predictor = DetectionPredictor(model_dir, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped, written = [], list(skipped), []
    for batch in batched(decoded(files, skipped), batch_size):
        names, pictures = zip(*batch, strict=True)
        for name, picture, boxes in zip(names, pictures, predictor(pictures, score_threshold), strict=True):
            drawn = file_key(name, len(rows), ".jpg", prefix="boxes_", width=4)
            draw_boxes(picture, boxes, predictor.classes).save(out_dir / drawn, quality=90)
            written.append(drawn)
            rows.append({"file": name, "width": picture.width, "height": picture.height, "image": drawn,
                         "boxes": [box_dict(box) for box in boxes]})
        progress(len(rows) / len(files), f"Detected boxes on {len(rows)} of {len(files)} images")
    if not rows:
        raise UserInputError("None of the images could be used. " + " ".join(s["error"] for s in skipped))
    result = {"model": predictor.meta["name"], "classes": predictor.classes, "score_threshold": score_threshold,
              "predictions": rows, "skipped": skipped}
    (out_dir / PREDICTIONS_FILE).write_text(json.dumps(result, indent=1))
    return result, [PREDICTIONS_FILE, *written]
