"""Training, evaluation and prediction for the CLIP classifier.

Training is seeded (same data, settings and seed give the same weights), with light augmentation
(random crop 70-100 % of the area and horizontal flips; no colour changes, since colour is often
what separates the classes). The loop itself (AdamW, held-out evaluation, best checkpoint, early
stopping, time budget, cancel) is `engine.finetune.loop`, shared with the detector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.finetune.classify import Params
from engine.finetune.classify.model import CLIPClassifier
from engine.finetune.classify.selective import SCORE_LR
from engine.finetune.loop import Objective, TrainResult, epoch_batches, fit
from engine.finetune.training import HistoryCallback
from engine.progress import ProgressCallback, ignore_progress


def to_tensor(images: Sequence[Image.Image], preprocess: dict[str, Any]) -> torch.Tensor:
    """Resize the short side to the model size, centre-crop, normalise: open_clip's eval transform."""
    size = preprocess.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    mean = torch.tensor(preprocess.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(3, 1, 1)
    std = torch.tensor(preprocess.get("std", (0.26862954, 0.26130258, 0.27577711))).view(3, 1, 1)
    tensors = []
    for image in images:
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        resized = image.resize((width, height), Image.Resampling.BICUBIC)
        left, top = (width - size) // 2, (height - size) // 2
        array = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        tensors.append((torch.from_numpy(array).permute(2, 0, 1) - mean) / std)
    return torch.stack(tensors)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop of 70-100 % of the area (resized back) and horizontal flip, per image, seeded."""
    size = batch.shape[-1]
    out = []
    for image in batch:
        area = 0.7 + 0.3 * float(torch.rand(1, generator=generator))
        side = max(1, round(size * math.sqrt(area)))
        top, left = (int(torch.randint(0, size - side + 1, (1,), generator=generator)) for _ in range(2))
        crop = image[:, top:top + side, left:left + side].unsqueeze(0)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(crop.flip(-1) if float(torch.rand(1, generator=generator)) < 0.5 else crop)
    return torch.stack(out)


@torch.no_grad()
def predict_logits(model: CLIPClassifier, pixels: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(pixels[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(pixels), batch_size)])


def classification_metrics(truth: Sequence[int], predicted: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall) and the confusion matrix (rows: true class, columns: predicted)."""
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[t, p] += 1
    per_class = {name: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
                 for i, name in enumerate(classes)}
    total = int(matrix.sum())
    return {"accuracy": float(np.trace(matrix) / total) if total else None, "images": total,
            "per_class_accuracy": per_class, "confusion_matrix": matrix.tolist()}


def evaluate(model: CLIPClassifier, pixels: torch.Tensor, labels: Sequence[int]) -> dict[str, Any]:
    logits = predict_logits(model, pixels)
    metrics = classification_metrics(list(labels), logits.argmax(1).tolist(), model.classes)
    metrics["loss"] = float(F.cross_entropy(logits, torch.tensor(list(labels)))) if len(labels) else None
    return metrics


def train(model: CLIPClassifier, train_pixels: torch.Tensor, train_labels: Sequence[int],
          held_pixels: torch.Tensor, held_labels: Sequence[int], settings: Params,
          unlabeled: torch.Tensor | None = None, progress: ProgressCallback = ignore_progress,
          on_history: HistoryCallback | None = None) -> TrainResult:
    """Fine-tune in place and leave the best checkpoint loaded (`engine.finetune.loop.fit`).

    The best checkpoint has the highest held-out accuracy, then (Selective LoRA) the fewest active blocks, then
    the lowest held-out loss: an early checkpoint has had too few steps for the penalty to switch blocks off.
    Selective LoRA adds its sparsity penalty to the loss, its block scores learn at their own rate (`selective`)
    and the history gets an active_blocks column.
    """
    device = next(model.parameters()).device
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    labels = torch.tensor(list(train_labels))
    batches = epoch_batches(len(labels), settings.batch_size, generator)
    gates = model.gates

    def batch_loss() -> torch.Tensor:
        model.train()
        batch = next(batches)
        pixels = train_pixels[batch]
        pixels = augment(pixels, generator) if settings.augment else pixels
        loss = F.cross_entropy(model(pixels.to(device)), labels[batch].to(device))
        if unlabeled is not None and len(unlabeled) and settings.unlabeled_weight > 0:
            pick = torch.randint(0, len(unlabeled), (min(settings.batch_size, len(unlabeled)),), generator=generator)
            probabilities = model(unlabeled[pick].to(device)).softmax(-1)
            entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1).mean()
            loss = loss + settings.unlabeled_weight * entropy
        if gates is not None:
            loss = loss + settings.sparsity * gates.penalty()
        return loss

    def columns(metrics: dict[str, Any] | None) -> dict[str, Any]:
        held = {"held_out_accuracy": metrics and metrics["accuracy"], "held_out_loss": metrics and metrics["loss"]}
        return held if gates is None else {**held, "active_blocks": len(gates.active())}

    def checked() -> dict[str, Any]:
        active = len(gates.active()) if gates is not None else 0
        return {**evaluate(model, held_pixels, held_labels), "active_blocks": active}

    scores = [{"params": [gates.scores], "lr": SCORE_LR, "weight_decay": 0.0}] if gates is not None else []
    objective = Objective(model, model.parameters(), batch_loss, checked if len(held_labels) else None, columns,
                          rank=lambda m: (m["accuracy"], -m["active_blocks"], -m["loss"]), groups=scores)
    result = fit(objective, settings, progress, on_history)
    model.eval()
    return result
