"""The `finetune_kshot` job: how well few-shot fine-tuning does with K examples per class, and how much that
varies with which K were drawn. For each seed a K-shot sample is drawn, a classifier or detector is trained on it
as its training job trains (the same settings, `training`), and the rest of the set is tested against the model
before fine-tuning; the result is each seed's metrics with their mean and spread. Torch-free until `run`."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.finetune import classify, detect
from engine.limits import seed_problem
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param, scratch
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.presets import get_preset
from engine.progress import Cancelled, ProgressCallback, ignore_progress, sub_progress
from engine.tables import write_csv

TASKS = {"classify": classify, "detect": detect}  # the training job whose Params `training` holds
MAX_SEEDS = 10
METRICS = {  # per task: result key -> what a table calls it, the baseline before its fine-tuned twin
    "classify": {"zero_shot_accuracy": "zero-shot accuracy", "fine_tuned_accuracy": "fine-tuned accuracy"},
    "detect": {"baseline_map_50": "baseline mAP@0.5", "fine_tuned_map_50": "fine-tuned mAP@0.5",
               "baseline_map": "baseline mAP@[.5:.95]", "fine_tuned_map": "fine-tuned mAP@[.5:.95]"},
}
RESULT_FILE, TABLE_FILE = "kshot.json", "kshot.csv"


@dataclasses.dataclass(frozen=True)
class Params(BaseParams):
    """K, the seeds, and the training settings of the task's own training job (declared there, not here)."""

    task: str = param("classify", "what is evaluated: a classifier (classify) or a detector (detect)",
                      choices=tuple(TASKS))
    shots: int = param(5, "K: training images per class in each sample; the other images are tested", ge=1,
                       le=1000, label="K (training images per class)")
    seeds: tuple[int, ...] = param((0, 1, 2), "one K-shot sample and one training per seed (comma-separated)", ge=1,
                             le=MAX_SEEDS, label="Seeds")
    training: Any = param(None, "the task's training settings (its training job's parameters; the ones not given "  # noqa: RUF009 - checked by check()
                                "keep their defaults; the seed is each sample's; nothing is held out, so the held-out "
                                "share, evaluation interval and patience do not apply)")

    def check(self) -> None:
        bad = next((problem for seed in self.seeds if (problem := seed_problem(seed, "each seed"))), None)
        if bad:
            raise UserInputError(f"seeds: {bad}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserInputError(f"seeds: each seed once (the spread of repeated samples means nothing), not "
                                 f"{', '.join(map(str, self.seeds))}.")
        if self.training is not None and not isinstance(self.training, Mapping):
            raise UserInputError("training: the training job's parameters by name, not "
                                 f"{type(self.training).__name__}.")
        object.__setattr__(self, "training", self.training_params().to_dict())  # checked, defaults filled in

    def presets(self) -> tuple[str, ...]:
        return self.training_params().presets()

    def training_params(self, seed: int | None = None) -> classify.Params | detect.Params:
        """The task's training parameters (for one sample's `seed`)."""
        values = dict(self.training or {})
        return TASKS[self.task].Params.from_dict(values, **({} if seed is None else {"seed": seed}))


@dataclasses.dataclass(frozen=True)
class Inputs(BaseInputs):
    """The roles of the task's training job: a classifier's dataset (zips of class folders) and class_NNN images,
    or a detector's dataset, images and annotations."""

    dataset: list[NamedFile]
    classes: list[list[NamedFile]] = dataclasses.field(default_factory=list)
    images: list[NamedFile] = dataclasses.field(default_factory=list)
    annotations: list[NamedFile] = dataclasses.field(default_factory=list)

    @classmethod
    def from_roles(cls, files_of: Callable[[str], list[NamedFile]]) -> Inputs:
        named = classify.Inputs.from_roles(files_of)
        return cls(named.dataset, named.classes, list(files_of("images")), list(files_of("annotations")))

    def of(self, task: str) -> classify.Inputs | detect.Inputs:
        """These inputs as the task's training job takes them."""
        if task == "classify":
            return classify.Inputs(self.dataset, [], self.classes)
        return detect.Inputs(self.dataset, self.images, self.annotations)


@dataclasses.dataclass
class Result(BaseResult):
    """Per seed (`runs`): its seed, image counts, each metric of METRICS[task], the steps run and why training
    stopped (nothing is held out to choose a checkpoint on: the last step is tested); `summary`: each metric's
    mean and std (the sample standard deviation, 0 with one seed) over the seeds, a metric no seed has (None: no
    box of any class tested) left None; `notes`: images used only in part (the first page of a TIFF)."""

    task: str
    shots: int
    seeds: list[int]
    base_preset: str
    random_weights: bool
    classes: list[str]
    sampling: str
    metrics: dict[str, str]
    runs: list[dict[str, Any]]
    summary: dict[str, dict[str, float | None]]
    settings: dict[str, Any]
    skipped: list[dict[str, str]]
    device: str
    seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)


def spread(values: list[float | None]) -> dict[str, float | None]:
    """Mean and sample standard deviation of the values that exist (None for neither when none does)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(present), "std": statistics.stdev(present) if len(present) > 1 else 0.0}


def write_table(result: Result, path: Path) -> None:
    """kshot.csv: a row per seed, then the mean and the std rows."""
    columns = ["seed", "train_images", "test_images", *result.metrics, "steps_run", "stopped"]
    write_csv(path, columns, [*([row[c] for c in columns] for row in result.runs),
                              *([statistic, "", "", *(result.summary[m][statistic] for m in result.metrics), "", ""]
                                for statistic in ("mean", "std"))])


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    """Read the set as the task's training job does, then per seed: draw K per class, train, test the rest against
    the model before fine-tuning; write kshot.json and kshot.csv. A cancel ends the job (Cancelled propagates)
    rather than reporting a spread over the seeds that ran."""
    from engine.device import select_device

    started = time.monotonic()
    training = params.training_params()
    preset = get_preset(training.base_preset())
    if params.task == "classify":
        from engine.finetune.classify.data import KSHOT_SAMPLING, sample_shots
        from engine.finetune.classify.runs import kshot_split
    else:
        from engine.finetune.detect.data import KSHOT_SAMPLING, sample_shots
        from engine.finetune.detect.runs import kshot_split
    torch_device = select_device(device)
    progress(0.005, "Reading the examples")
    with scratch(out_dir) as work:  # a detector's images are read from it while training
        data = TASKS[params.task].read_inputs(inputs.of(params.task), training, work)
        runs = []
        for number, seed in enumerate(params.seeds, start=1):
            train_idx, test_idx = sample_shots(data, params.shots, seed)
            if not test_idx:
                raise UserInputError(f"Seed {seed}: the {params.shots}-shot sample took every annotated image, so "
                                     "none is left to test on. Lower K or add images.")
            seed_progress = _prefixed(sub_progress(progress, 0.01 + 0.98 * (number - 1) / len(params.seeds),
                                                   0.01 + 0.98 * number / len(params.seeds)),
                                      f"Seed {number} of {len(params.seeds)}")
            seed_progress(0.0, f"{len(train_idx)} training and {len(test_idx)} test images")
            measured = kshot_split(data, train_idx, test_idx, training.replace(seed=seed), torch_device,
                                   seed_progress)
            if measured["stopped"] == "cancelled":
                raise Cancelled
            runs.append({"seed": seed, "train_images": len(train_idx), "test_images": len(test_idx), **measured})
    classes = data.classes if params.task == "classify" else data.categories
    metrics = METRICS[params.task]
    result = Result(
        task=params.task, shots=params.shots, seeds=list(params.seeds), base_preset=preset.name,
        random_weights=preset.random_weights, classes=list(classes), sampling=KSHOT_SAMPLING, metrics=metrics,
        runs=runs, summary={key: spread([r[key] for r in runs]) for key in metrics}, settings=training.settings(),
        skipped=data.skipped, device=str(torch_device), seconds=round(time.monotonic() - started, 3),
        notes=data.notes, outputs=[RESULT_FILE, TABLE_FILE])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(result.to_json(), indent=1))
    write_table(result, out_dir / TABLE_FILE)
    progress(1.0, "Done")
    return result


def _prefixed(progress: ProgressCallback, prefix: str) -> ProgressCallback:
    """Reports of one seed's training, saying which seed: 'Seed 2 of 3 · Step 10/60 · …'."""
    return lambda fraction, message: progress(fraction, f"{prefix} · {message}")
