"""The `finetune_detect` job: train a few-shot RT-DETR detector on annotated images, compare it with the
detector before training on held-out images, and write the model. Torch-free until `run`; its
modules: data (annotated sets), metrics (COCO mAP), train, runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserInputError
from engine.finetune.training import HistoryCallback, TrainingParams, TrainingResult
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param, scratch
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from engine.annotations.dataset import Dataset


@dataclasses.dataclass(frozen=True)
class Params(TrainingParams):
    """Defaults for a few to a few dozen annotated images."""

    format: str = param("auto", "annotation format", choices=("auto", "coco", "yolo", "voc"), label="Annotation format")
    steps: int = param(150, "training steps (batches)", ge=1, le=100_000)
    batch_size: int = param(4, "images per step", ge=1, le=256, label="Images per step")
    learning_rate: float | None = param(None, "AdamW learning rate, in (0, 1]; empty: the base preset's (1e-4 "
                                              "pretrained, 3e-3 for the tiny random one)", ge=0.0, le=1.0)
    weight_decay: float = param(1e-4, "AdamW weight decay", ge=0.0)
    max_grad_norm: float = param(1.0, "gradients are clipped to this norm, as DETR-style detectors need", ge=0.0,
                                 label="Gradient clipping norm")
    eval_every: int = param(10, "steps between held-out evaluations", ge=1, le=100_000,
                            label="Steps between evaluations")
    patience: int = param(8, "evaluations without improvement before stopping", ge=1, le=10_000)
    train_backbone: bool = param(False, "train the backbone too (a bigger model file)",
                                 label="Train the backbone too (bigger model file)")

    JOB_FIELDS = (*TrainingParams.JOB_FIELDS, "format")
    PRESET_TOOL = "finetune-detect"

    def for_preset(self) -> Params:
        """These parameters with the base preset's learning rate where none was chosen."""
        if self.learning_rate is not None:
            return self
        return self.replace(learning_rate=float(get_preset(self.base_preset()).config.get("learning_rate", 1e-4)))


@dataclasses.dataclass(frozen=True)
class Inputs(BaseInputs):
    """Images and their annotations (COCO JSON, YOLO txt + classes.txt, Pascal VOC XML), or zips of them."""

    dataset: list[NamedFile]
    images: list[NamedFile] = dataclasses.field(default_factory=list)
    annotations: list[NamedFile] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Result(TrainingResult):
    """The run's summary; metrics are the detector's before training and after, on the held-out images."""

    train_boxes: int
    task: str = "detect"


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        on_history: HistoryCallback | None = None, device: str | None = None) -> Result:
    """Read the annotated images, train, evaluate against the pre-fine-tuning baseline and write `model/`,
    metrics.json, history.csv and model.zip into `out_dir`; `on_history` gets the curves after each step."""
    from engine.finetune.detect.runs import train_and_save

    progress(0.005, "Reading the images and annotations")
    with scratch(out_dir) as work:
        return train_and_save(read_inputs(inputs, params, work), params, out_dir, device, progress, on_history)


def read_inputs(inputs: Inputs, params: Params, work: Path) -> Dataset:
    """The annotated set of a run's inputs (zips extracted into `work`), refused with what to fix when the preset
    is not a detector's, nothing was given or no detector can learn from it (the K-shot job reads it so too)."""
    from engine.finetune.detect.data import load_detection_set

    preset = get_preset(params.base_preset())
    if preset.tool != params.PRESET_TOOL:
        raise UserInputError(f"Preset {preset.name!r} is not a detection preset.")
    files = [*inputs.dataset, *inputs.images, *inputs.annotations]
    if not files:
        raise UserInputError("Upload annotated images: a zip with the images and their annotations (COCO JSON, YOLO "
                             "txt + classes.txt, or Pascal VOC XML), or the images and annotation files.")
    return load_detection_set(files, work, params.format)
