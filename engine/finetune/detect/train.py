"""Fine-tuning and evaluating the detector.

Training is seeded (same data, settings and seed give the same weights) with RT-DETR's own loss
(Hungarian matching; varifocal, L1 and GIoU terms on every decoder layer and the query selection),
horizontal flips as the only augmentation, and gradients clipped as DETR-style detectors need. The
loop (AdamW, held-out evaluation, best checkpoint, early stopping, time budget, cancel) is
`engine.finetune.loop`, shared with the classifier. The best checkpoint has the highest held-out
mAP@[.5:.95], then mAP@0.5, then the lowest held-out loss (which moves before any box is right).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from engine.annotations.dataset import Box, ImageRecord
from engine.finetune.detect import Params
from engine.finetune.detect.metrics import detection_map
from engine.finetune.loop import Objective, TrainResult, epoch_batches, fit
from engine.finetune.training import HistoryCallback
from engine.models.rtdetr import Detector
from engine.progress import ProgressCallback, ignore_progress

Targets = list[dict[str, torch.Tensor]]


def targets_of(images: Sequence[ImageRecord], classes: Sequence[str]) -> Targets:
    """RT-DETR's labels: class indices and centre boxes as fractions of the image's width and height."""
    index = {name: k for k, name in enumerate(classes)}
    targets = []
    for image in images:
        boxes = [[(b.x + b.width / 2) / image.width, (b.y + b.height / 2) / image.height, b.width / image.width,
                  b.height / image.height] for b in image.boxes]
        targets.append({"class_labels": torch.tensor([index[b.category] for b in image.boxes], dtype=torch.long),
                        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)})
    return targets


def flip(encoded: torch.Tensor, targets: Targets, generator: torch.Generator) -> tuple[torch.Tensor, Targets]:
    """Each image flipped left-right with probability 1/2 (seeded), its boxes with it."""
    encoded, flipped = encoded.clone(), []
    for k, target in enumerate(targets):
        if float(torch.rand(1, generator=generator)) < 0.5:
            encoded[k] = encoded[k].flip(-1)
            boxes = target["boxes"].clone()
            boxes[:, 0] = 1 - boxes[:, 0]
            target = {**target, "boxes": boxes}
        flipped.append(target)
    return encoded, flipped


@torch.no_grad()
def evaluate(detector: Detector, encoded: torch.Tensor, images: Sequence[ImageRecord],
             batch_size: int = 8) -> dict[str, Any]:
    """mAP@0.5, mAP@[.5:.95] (overall and per class) and the mean loss on labelled images."""
    detector.model.eval()
    targets = targets_of(images, detector.classes)
    predicted: list[list[Box]] = []
    losses = []
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        outputs = detector.forward(encoded[batch], targets[batch])
        losses.append(float(outputs.loss) * len(targets[batch]))
        predicted += detector.boxes(outputs, [(image.width, image.height) for image in images[batch]])
    metrics = detection_map([image.boxes for image in images], predicted, detector.classes)
    return {**metrics, "loss": sum(losses) / max(len(images), 1)}


def train(detector: Detector, train_encoded: torch.Tensor, train_targets: Targets, held_encoded: torch.Tensor,
          held_images: Sequence[ImageRecord], settings: Params, progress: ProgressCallback = ignore_progress,
          on_history: HistoryCallback | None = None) -> TrainResult:
    """Fine-tune in place and leave the best checkpoint loaded; `settings` need a learning rate (`for_preset`)."""
    if settings.learning_rate is None:
        raise ValueError("settings.learning_rate is None: call settings.for_preset() first")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    batches = epoch_batches(len(train_targets), settings.batch_size, generator)

    def batch_loss() -> torch.Tensor:
        detector.model.train()
        batch = next(batches)
        encoded, targets = train_encoded[batch], [train_targets[i] for i in batch]
        if settings.augment:
            encoded, targets = flip(encoded, targets, generator)
        return detector.forward(encoded, targets).loss

    def columns(metrics: dict[str, Any] | None) -> dict[str, Any]:
        return {f"held_out_{key}": metrics and metrics[key] for key in ("map_50", "map", "loss")}

    objective = Objective(detector, detector.model.parameters(), batch_loss,
                          (lambda: evaluate(detector, held_encoded, held_images)) if len(held_images) else None,
                          columns, rank=lambda m: (m["map"] or 0.0, m["map_50"] or 0.0, -m["loss"]),
                          max_grad_norm=settings.max_grad_norm)
    result = fit(objective, settings, progress, on_history)
    detector.model.eval()
    return result
