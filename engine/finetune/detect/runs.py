"""Whole detection runs shared by the CLI and the jobs: train + evaluate against the baseline + save, and
detecting boxes on new images with a saved detector."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.annotations.dataset import Box, Dataset
from engine.device import select_device
from engine.errors import UserInputError
from engine.finetune import predict
from engine.finetune.detect import Params, Result
from engine.finetune.detect.data import split_held_out
from engine.finetune.detect.train import evaluate, targets_of, train
from engine.finetune.loop import TrainResult
from engine.finetune.training import HistoryCallback, save_run
from engine.media import decoded
from engine.models.rtdetr import DetectionPredictor, Detector, build_detector, save_detector
from engine.naming import file_key
from engine.params import NamedFile
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress

PREDICTIONS_FILE = "detections.json"


def _fit(dataset: Dataset, train_idx: list[int], held_idx: list[int], params: Params, device: torch.device,
         progress: ProgressCallback = ignore_progress,
         on_history: HistoryCallback | None = None) -> tuple[Detector, TrainResult]:
    """Train one detector on `train_idx`, evaluated on `held_idx` before training and after each few steps;
    `params` with a learning rate (`for_preset`)."""
    preset = get_preset(params.base_preset())
    train_images = [dataset.images[i] for i in train_idx]
    held_images = [dataset.images[i] for i in held_idx]
    progress(0.01, f"Loading model {preset.label}")
    detector = build_detector(preset.name, dataset.categories, device, params.train_backbone, params.seed)
    progress(0.03, f"Preparing {len(train_images)} training and {len(held_images)} held-out images")
    train_x = detector.spec.encode(image.load() for image in train_images)
    held_x = detector.spec.encode(image.load() for image in held_images) if held_images else train_x[:0]
    trained = train(detector, train_x, targets_of(train_images, detector.classes), held_x, held_images, params,
                    sub_progress(progress, 0.05, 0.97), on_history)
    return detector, trained


def kshot_split(dataset: Dataset, train_idx: list[int], test_idx: list[int], params: Params, device: torch.device,
                progress: ProgressCallback = ignore_progress) -> dict[str, Any]:
    """One K-shot sample of the K-shot job: mAP on `test_idx` of the base model with its new class head, then of
    the detector trained on `train_idx` with nothing held out (the last step is kept: a checkpoint chosen on the
    test images would flatter it)."""
    params = params.for_preset()
    base = build_detector(params.base_preset(), dataset.categories, device, params.train_backbone, params.seed)
    test_images = [dataset.images[i] for i in test_idx]
    test_x = base.spec.encode(image.load() for image in test_images)
    baseline = evaluate(base, test_x, test_images)
    del base
    detector, trained = _fit(dataset, train_idx, [], params, device, progress)
    tuned = evaluate(detector, test_x, test_images)
    return {"baseline_map_50": baseline["map_50"], "fine_tuned_map_50": tuned["map_50"],
            "baseline_map": baseline["map"], "fine_tuned_map": tuned["map"], "steps_run": trained.steps_run,
            "stopped": trained.stopped}


def train_and_save(dataset: Dataset, params: Params, out_dir: Path, device: str | None = None,
                   progress: ProgressCallback = ignore_progress, on_history: HistoryCallback | None = None) -> Result:
    """Split, train, compare with the pre-fine-tuning baseline and write `model/`, metrics.json, history.csv
    and model.zip.

    The baseline is the base model with its new class head before any step, on the same held-out images.
    Nothing is written if training fails (e.g. diverges); a cancelled run saves its best checkpoint.
    """
    params = params.for_preset()
    preset = get_preset(params.base_preset())
    torch_device = select_device(device)
    train_idx, held_idx = split_held_out(dataset, params.held_out_fraction, params.seed)
    train_images = [dataset.images[i] for i in train_idx]
    held_images = [dataset.images[i] for i in held_idx]
    detector, trained = _fit(dataset, train_idx, held_idx, params, torch_device, progress, on_history)
    notes = list(dataset.notes)  # files of which only the first page was used
    if not held_images:
        notes.append("Too few images to hold any out (every class must keep a box to train on): no mAP is "
                     "reported and the last step was kept. Add annotated images.")
    result = Result(
        name=params.model_name, classes=detector.classes, base_preset=preset.name,
        random_weights=preset.random_weights, settings=params.settings(), train_images=len(train_images),
        held_out_images=len(held_images), train_boxes=sum(len(image.boxes) for image in train_images),
        held_out=[image.file_name for image in held_images],
        metrics={"baseline": trained.baseline, "fine_tuned": trained.best}, best_step=trained.best_step,
        steps_run=trained.steps_run, stopped=trained.stopped, seconds=round(trained.seconds, 3),
        history=trained.history, skipped=dataset.skipped, notes=notes, device=str(torch_device),
        created_at=time.time())
    save_run(out_dir, result, functools.partial(save_detector, detector))
    return result


def box_dict(box: Box) -> dict[str, Any]:
    return {"box": [round(v, 2) for v in (box.x, box.y, box.width, box.height)], "category": box.category,
            "score": round(box.score or 0.0, 6)}


def predict_files(model_dir: Path, files: Sequence[NamedFile], out_dir: Path, score_threshold: float = 0.5,
                  device: str | None = None, batch_size: int = 8, skipped: Sequence[dict[str, str]] = (),
                  progress: ProgressCallback = ignore_progress) -> predict.Result:
    """Detect boxes scoring at least `score_threshold` on images (a few decoded at a time); write a picture with
    the boxes drawn per image, detections.json and detections.csv. Unreadable images join `skipped` (files
    already left out); images used only in part (a TIFF's first page), the result's `notes`."""
    from engine.video import batched
    from engine.visualize import draw_boxes

    if not 0.0 <= score_threshold <= 1.0:
        raise UserInputError(f"The score threshold must be between 0 and 1, not {score_threshold}.")
    if not files:
        raise UserInputError("No images given: upload images (or a zip of them) to detect boxes on.")
    predictor = DetectionPredictor(model_dir, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped, written, notes = [], list(skipped), [], []
    for batch in batched(decoded(files, skipped, notes), batch_size):
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
    result = predict.Result("detect", predictor.meta["name"], predictor.classes, rows, skipped,
                            score_threshold=score_threshold, outputs=written, notes=notes)
    return predict.save(result, out_dir, PREDICTIONS_FILE)
