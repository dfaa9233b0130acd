"""Training, evaluation and prediction for the CLIP classifier.

Training is seeded (same data, settings and seed give the same weights), uses AdamW with light
augmentation (random crop 70-100 % of the area and horizontal flips; no colour changes, since
colour is often what separates the classes), evaluates on the held-out images every few steps,
keeps the best checkpoint (held-out accuracy, then held-out loss) and stops early, at the time
budget, or when the progress callback raises (the job system's cancel): the best checkpoint so
far is then kept and the run is reported as stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.errors import UserInputError
from engine.finetune.model import CLIPClassifier
from engine.progress import ProgressCallback, ignore_progress

HistoryCallback = Callable[[list[dict[str, Any]]], None]
METHODS = ("lora", "linear")


@dataclass(frozen=True)
class TrainSettings:
    """Defaults that work from 1 to 16 shots per class without tuning."""

    method: str = "lora"  # "lora" (adapters + head) or "linear" (head only: a linear probe)
    lora_rank: int = 8
    lora_blocks: str = "all"
    steps: int = 60
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    held_out_fraction: float = 0.3
    eval_every: int = 5
    patience: int = 6  # evaluations without improvement before stopping
    time_budget_s: float = 900.0
    augment: bool = True
    unlabeled_weight: float = 0.1  # transductive entropy term, used when unlabeled images are given
    seed: int = 0

    def check(self) -> TrainSettings:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        for name, low, high in (("steps", 1, 100_000), ("batch_size", 1, 1024), ("eval_every", 1, 100_000),
                                ("patience", 1, 10_000)):
            if not low <= getattr(self, name) <= high:
                problems.append(f"{name} must be between {low} and {high}, not {getattr(self, name)}")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate must be in (0, 1], not {self.learning_rate}")
        if self.time_budget_s <= 0:
            problems.append("time_budget_s must be positive")
        if problems:
            raise UserInputError("Training settings: " + "; ".join(problems) + ".")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    steps_run: int = 0
    stopped: str = "completed"  # completed | early stopping | time budget | cancelled
    seconds: float = 0.0


def _better(candidate: dict[str, Any], best: dict[str, Any] | None) -> bool:
    if best is None:
        return True
    if candidate["accuracy"] != best["accuracy"]:
        return candidate["accuracy"] > best["accuracy"]
    return candidate["loss"] < best["loss"]


def train(model: CLIPClassifier, train_pixels: torch.Tensor, train_labels: Sequence[int],
          held_pixels: torch.Tensor, held_labels: Sequence[int], settings: TrainSettings,
          unlabeled: torch.Tensor | None = None, progress: ProgressCallback = ignore_progress,
          on_history: HistoryCallback | None = None) -> TrainResult:
    """Fine-tune in place and leave the best checkpoint loaded.

    Without held-out images there is nothing to select on: the last step is kept and no early stopping happens.
    A NaN or infinite loss raises UserInputError (lower the learning rate); the model is then not to be saved.
    """
    settings.check()
    device = next(model.parameters()).device
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    labels = torch.tensor(list(train_labels))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    result = TrainResult()
    started = time.monotonic()
    best_metrics = evaluate(model, held_pixels, held_labels) if len(held_labels) else None
    best_state = model.trainable_state()
    result.history.append({"step": 0, "loss": None, "held_out_accuracy": best_metrics and best_metrics["accuracy"],
                           "held_out_loss": best_metrics and best_metrics["loss"]})
    order: list[int] = []
    stale = 0
    for step in range(1, settings.steps + 1):
        model.train()
        batch = []
        while len(batch) < min(settings.batch_size, len(labels)):
            if not order:
                order = torch.randperm(len(labels), generator=generator).tolist()
            batch.append(order.pop())
        pixels = train_pixels[batch]
        pixels = augment(pixels, generator) if settings.augment else pixels
        loss = F.cross_entropy(model(pixels.to(device)), labels[batch].to(device))
        if unlabeled is not None and len(unlabeled) and settings.unlabeled_weight > 0:
            pick = torch.randint(0, len(unlabeled), (min(settings.batch_size, len(unlabeled)),), generator=generator)
            probabilities = model(unlabeled[pick].to(device)).softmax(-1)
            entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1).mean()
            loss = loss + settings.unlabeled_weight * entropy
        if not torch.isfinite(loss):
            raise UserInputError(f"Training diverged: the loss became {loss.item()} at step {step}. Lower the "
                                 f"learning rate (now {settings.learning_rate}); no model was saved.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.steps_run = step
        record: dict[str, Any] = {"step": step, "loss": loss.item(), "held_out_accuracy": None, "held_out_loss": None}
        result.history.append(record)
        if len(held_labels) and (step % settings.eval_every == 0 or step == settings.steps):
            metrics = evaluate(model, held_pixels, held_labels)
            record["held_out_accuracy"], record["held_out_loss"] = metrics["accuracy"], metrics["loss"]
            if _better(metrics, best_metrics):
                best_metrics, best_state, result.best_step, stale = metrics, model.trainable_state(), step, 0
            else:
                stale += 1
        elif not len(held_labels):
            best_state, result.best_step = model.trainable_state(), step
        if on_history is not None:
            on_history(result.history)
        if stale >= settings.patience:
            result.stopped = "early stopping"
            break
        if time.monotonic() - started > settings.time_budget_s:
            result.stopped = "time budget"
            break
        try:
            progress(step / settings.steps, f"Step {step}/{settings.steps} · loss {record['loss']:.4f}")
        except Exception:  # the caller asks to stop (a job's cancel): keep the best checkpoint so far
            result.stopped = "cancelled"
            break
    model.load_trainable_state(best_state)
    model.eval()
    result.seconds = time.monotonic() - started
    return result
