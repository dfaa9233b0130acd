"""Whole classifier runs shared by the CLI and the jobs: train + evaluate + save, one K-shot sample, prediction."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.device import select_device
from engine.finetune.classify import Params, Result
from engine.finetune.classify.data import LabelledSet, split_held_out
from engine.finetune.classify.forgetting import measure_retention, prepare_retention
from engine.finetune.classify.model import (
    CLIPClassifier,
    LoraSettings,
    build_classifier,
    load_classifier,
    save_classifier,
)
from engine.finetune.classify.train import evaluate, predict_logits, to_tensor, train
from engine.finetune.loop import TrainResult
from engine.finetune.training import HistoryCallback, save_run
from engine.media import load_images
from engine.naming import file_key
from engine.params import NamedFile
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress


@dataclass
class Fitted:
    """One classifier trained on a split: the model, its test images, zero-shot and fine-tuned test metrics."""

    classifier: CLIPClassifier
    pixels: torch.Tensor
    labels: list[int]
    zero_shot: dict[str, Any] | None
    fine_tuned: dict[str, Any] | None
    trained: TrainResult


def fit_split(data: LabelledSet, train_idx: list[int], test_idx: list[int], params: Params, device: torch.device,
              unlabeled: list | None = None, progress: ProgressCallback = ignore_progress,
              on_history: HistoryCallback | None = None) -> Fitted:
    """Train one classifier on `train_idx` (tested on `test_idx`) with `params.method`."""
    lora = (LoraSettings(params.lora_rank, params.lora_blocks, params.method == "selective-lora")
            if params.method != "linear" else None)
    classifier, preprocess = build_classifier(params.base_preset(), data.classes, device, lora, params.seed)
    train_x = to_tensor([data.images[i] for i in train_idx], preprocess)
    test_x = to_tensor([data.images[i] for i in test_idx], preprocess) if test_idx else train_x[:0]
    test_y = [data.labels[i] for i in test_idx]
    extra = to_tensor(unlabeled, preprocess) if unlabeled else None
    zero_shot = evaluate(classifier, test_x, test_y) if test_idx else None
    result = train(classifier, train_x, [data.labels[i] for i in train_idx], test_x, test_y, params, extra,
                   progress, on_history)
    finetuned = evaluate(classifier, test_x, test_y) if test_idx else None
    return Fitted(classifier, test_x, test_y, zero_shot, finetuned, result)


def train_and_save(data: LabelledSet, params: Params, out_dir: Path, unlabeled: Sequence[NamedFile] = (),
                   device: str | None = None, progress: ProgressCallback = ignore_progress,
                   on_history: HistoryCallback | None = None, retention: LabelledSet | None = None) -> Result:
    """Split, train, evaluate against the zero-shot baseline, measure retention on `retention` (default: the
    generated shapes) and write `model/`, metrics.json and history.csv.

    Nothing is written if training fails (e.g. diverges); a cancelled run saves its best checkpoint.
    """
    torch_device = select_device(device)
    train_idx, held_idx = split_held_out(data, params.held_out_fraction, params.seed)
    extra_images, skipped = [], []
    notes = [*data.notes, *(retention.notes if retention else [])]  # files of which only the first page was used
    if unlabeled:
        _, extra_images, skipped = load_images(list(unlabeled), what="unlabeled images", notes=notes)
    progress(0.02, f"Preparing {len(train_idx)} training and {len(held_idx)} held-out images")
    fitted = fit_split(data, train_idx, held_idx, params, torch_device, extra_images,
                       sub_progress(progress, 0.05, 0.95), on_history)
    classifier, trained = fitted.classifier, fitted.trained
    # no progress message from here on: a cancel during training keeps its checkpoint, and a message would raise
    retained = measure_retention(classifier, prepare_retention(retention, params.base_preset(), torch_device))
    if not held_idx:
        notes.append("No class has 2 or more images, so none were held out: no accuracy is reported and the last "
                     "step was kept. Add images, or evaluate with K-shot sampling.")
    preset = get_preset(params.base_preset())
    result = Result(
        name=params.model_name, classes=data.classes, base_preset=preset.name, random_weights=preset.random_weights,
        settings=params.settings(), train_images=len(train_idx), held_out_images=len(held_idx),
        held_out=[data.names[i] for i in held_idx],
        metrics={"zero_shot": fitted.zero_shot, "fine_tuned": fitted.fine_tuned},
        best_step=trained.best_step, steps_run=trained.steps_run, stopped=trained.stopped,
        seconds=round(trained.seconds, 3), history=trained.history,
        skipped=data.skipped + [{**s, "role": "unlabeled"} for s in skipped], notes=notes,
        device=str(torch_device), created_at=time.time(), retention=retained,
        blocks=classifier.gates.report() if classifier.gates is not None else None,
        trainable_parameters=classifier.kept_parameters())
    save_run(out_dir, result, functools.partial(save_classifier, classifier))
    return result


def kshot_split(data: LabelledSet, train_idx: list[int], test_idx: list[int], params: Params, device: torch.device,
                progress: ProgressCallback = ignore_progress) -> dict[str, Any]:
    """One K-shot sample of the K-shot job: zero-shot accuracy on `test_idx`, then trained on `train_idx` with
    nothing held out (the last step is kept: a checkpoint chosen on the test images would flatter it) and tested."""
    zero_shot_model, preprocess = build_classifier(params.base_preset(), data.classes, device, None, params.seed)
    test_x = to_tensor([data.images[i] for i in test_idx], preprocess)
    test_y = [data.labels[i] for i in test_idx]
    zero_shot = evaluate(zero_shot_model, test_x, test_y)
    del zero_shot_model
    fitted = fit_split(data, train_idx, [], params, device, progress=progress)
    return {"zero_shot_accuracy": zero_shot["accuracy"],
            "fine_tuned_accuracy": evaluate(fitted.classifier, test_x, test_y)["accuracy"],
            "steps_run": fitted.trained.steps_run, "stopped": fitted.trained.stopped}


THUMBNAIL_SIZE = (256, 256)


class Predictor:
    """A saved model loaded once, with its WiSE-FT mix `alpha` (0 zero-shot, 1 fine-tuned), classifying batches.

    With `thumbnails`, a small JPEG of each image classified is written there (named in its row's "image" and
    in `written`), so a page can show what each prediction is about without the original."""

    def __init__(self, model_dir: Path, alpha: float = 1.0, device: str | None = None,
                 thumbnails: Path | None = None) -> None:
        self.classifier, self.preprocess, self.meta = load_classifier(model_dir, select_device(device))
        self.classifier.set_wise_alpha(alpha)
        self.thumbnails, self.written = thumbnails, []

    def __call__(self, names: Sequence[str], images: Sequence) -> list[dict[str, Any]]:
        classes = self.meta["classes"]
        probabilities = predict_logits(self.classifier, to_tensor(images, self.preprocess)).softmax(-1)
        rows = []
        for name, row in zip(names, probabilities.tolist(), strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            rows.append({"file": name, "class": classes[best], "probability": row[best],
                         "probabilities": dict(zip(classes, row, strict=True))})
        if self.thumbnails is not None:
            for row, image in zip(rows, images, strict=True):
                row["image"] = self._thumbnail(row["file"], image)
        return rows

    def _thumbnail(self, name: str, image) -> str:
        key = file_key(name, len(self.written), ".jpg", prefix="thumb_", width=4)
        small = image.convert("RGB")
        small.thumbnail(THUMBNAIL_SIZE)
        self.thumbnails.mkdir(parents=True, exist_ok=True)
        small.save(self.thumbnails / key, quality=85)
        self.written.append(key)
        return key


def predict_video(predictor: Predictor, video: NamedFile, stride: int | None = None, fps: float | None = None,
                  batch_size: int = 16) -> list[dict[str, Any]]:
    """Classify a video's sampled frames (every `stride`-th, or about `fps` per second), a batch at a time."""
    from engine.video import batched, iter_frames

    rows = []
    for frames in batched(iter_frames(video[1], stride=stride, fps=fps, display_name=video[0]), batch_size):
        for row, frame in zip(predictor([f.label for f in frames], [f.image for f in frames]), frames, strict=True):
            rows.append({**row, "time_s": frame.time_s})
    return rows
