"""What the classifier and the detector training jobs share, torch-free: the parameters of the training
loop, the summary of a run, and the size limit of a training set."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.limits import MAX_SEED
from engine.models.saved import MODEL_DIR, RUN_META
from engine.params import Params, Result, param
from engine.presets import presets_for
from engine.progress import duration
from engine.tables import write_records

HistoryCallback = Callable[[list[dict[str, Any]]], None]
DEFAULT_MAX_IMAGES = 2000


def pace_text(step: int, steps: int, training_s: float, budget_left_s: float) -> str:
    """' · 3.2 steps/s · about 50 s left' after `step` of `steps` done in `training_s` seconds; the time budget
    (`budget_left_s` of it left) may end training sooner than the steps would. Empty while no time has passed."""
    if step <= 0 or training_s <= 0:
        return ""
    rate = step / training_s
    left = min((steps - step) / rate, max(budget_left_s, 0.0))
    shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
    return f" · {shown} steps/s · about {duration(left)} left"


def max_training_images() -> int:
    """Most labelled images accepted in one training set (FEWSHOT_FINETUNE_MAX_IMAGES)."""
    return int(os.environ.get("FEWSHOT_FINETUNE_MAX_IMAGES", DEFAULT_MAX_IMAGES))


@dataclasses.dataclass(frozen=True)
class TrainingParams(Params):
    """The fields every training job has; each kind adds the loop's own (steps, learning rate…), whose good
    defaults differ. Problems are reported as "Training settings: …" so the user knows where to look."""

    model_name: str = param("", "the name the trained model is saved under")
    preset: str = param("", "base model preset (default: the first of the tool's presets)", label="Base model")
    held_out_fraction: float = param(0.3, "share of the images held out to evaluate on", ge=0.0, le=0.99,
                                     label="Share held out")
    time_budget_s: float = param(900.0, "training stops after this many seconds", ge=0.001,
                                 label="Time budget (s)")
    augment: bool = param(True, "random flips (and crops, for classifiers) while training",
                          label="Augment (random flips, crops)")
    seed: int = param(0, "seed of the split, the new weights and the batches", ge=0, le=MAX_SEED)

    JOB_FIELDS = ("model_name", "preset")  # what names the run, not how it trains
    PRESET_TOOL = ""  # the presets this kind of model builds on

    def __post_init__(self) -> None:
        """Every field checked, and all problems named in one message: a form shows them at once."""
        hints = typing.get_type_hints(type(self))
        problems = []
        for field in dataclasses.fields(self):
            try:
                object.__setattr__(self, field.name, self._checked(field, hints[field.name], getattr(self, field.name)))
            except UserInputError as exc:
                problems.append(str(exc).rstrip("."))
        if problems:
            raise UserInputError("Training settings: " + "; ".join(problems) + ".")
        try:
            self.check()
        except UserInputError as exc:
            raise UserInputError(f"Training settings: {exc}") from None

    def check(self) -> None:
        learning_rate = getattr(self, "learning_rate", None)
        if learning_rate is not None and not 0 < learning_rate <= 1:
            raise UserInputError(f"learning_rate must be in (0, 1], not {learning_rate}.")

    def base_preset(self) -> str:
        return self.preset or presets_for(self.PRESET_TOOL)[0].name

    def presets(self) -> tuple[str, ...]:
        return (self.base_preset(),)

    def settings(self) -> dict[str, Any]:
        """How the model was trained, as its model.json and metrics.json record it."""
        return {key: value for key, value in self.to_dict().items() if key not in self.JOB_FIELDS}


@dataclasses.dataclass
class TrainingResult(Result):
    """A training run's summary: the job's result and metrics.json."""

    name: str
    classes: list[str]
    base_preset: str
    random_weights: bool
    settings: dict[str, Any]
    train_images: int
    held_out_images: int
    held_out: list[str]
    metrics: dict[str, Any]
    best_step: int
    steps_run: int
    stopped: str
    seconds: float
    history: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    notes: list[str]
    device: str
    created_at: float


def save_run(out_dir: Path, result: TrainingResult, save_model: Callable[[Path, dict[str, Any]], Path]) -> None:
    """Write a training run: `model/` (its model.json keeps RUN_META of the summary), metrics.json (the summary),
    history.csv (the curves) and model.zip (the download, which can be uploaded elsewhere), named in
    `result.outputs`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = result.to_json()
    save_model(out_dir / MODEL_DIR, {key: summary[key] for key in RUN_META})
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    history = summary["history"]
    write_records(out_dir / "history.csv", list(history[0]), history)
    archive = shutil.make_archive(str(out_dir / "model"), "zip", out_dir / MODEL_DIR)
    result.outputs = ["metrics.json", "history.csv", Path(archive).name]
