"""The `finetune_classify` job: train a few-shot CLIP classifier (LoRA, Selective LoRA or a linear probe) on
labelled examples, compare it with zero-shot CLIP on held-out images, measure what it forgot of other classes,
and write the model. Torch-free until `run`; its modules: data (examples), model (head from class-name text,
LoRA, WiSE-FT), selective (Selective LoRA's gates), train, forgetting (retention, methods compared), runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UserInputError
from engine.finetune.training import HistoryCallback, TrainingParams, TrainingResult
from engine.limits import class_name_problem, max_classes
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param, scratch
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress

if TYPE_CHECKING:
    from engine.finetune.classify.data import LabelledSet

METHODS = ("lora", "selective-lora", "linear")
DEFAULT_SPARSITY = 5.0


def named_class(name: str, where: str) -> str:
    """A class name stripped, or refused naming `where` (a named class, a folder of a zip): held to an annotation
    set's rules (`class_name_problem`), since it becomes the model's label and the text of its prompts."""
    name = name.strip()
    if not name:
        raise UserInputError(f"{where} has no name: give every class a name.")
    problem = class_name_problem(name)
    if problem:
        raise UserInputError(f"{where}: {problem}.")
    return name


@dataclasses.dataclass(frozen=True)
class Params(TrainingParams):
    """Defaults that work from 1 to 16 shots per class without tuning."""

    class_names: tuple[str, ...] = param((), "the names of the uploaded classes, in the order of roles class_000, "
                                       "class_001…")
    method: str = param("lora", "lora: adapters on the image tower + head; selective-lora: adapters that a learned "
                        "gate per block turns on or off, keeping the rest of CLIP as it was; linear: the head only "
                        "(a linear probe)", choices=METHODS)
    lora_rank: int = param(8, "rank of the LoRA adapters", ge=1, le=256, label="LoRA rank")
    lora_blocks: str = param("all", "image-tower blocks with adapters (with selective-lora: the candidates): all, "
                             "last:N or indices like 0,3,5", label="LoRA blocks (all, last:N, 0,3,5)")
    sparsity: float = param(DEFAULT_SPARSITY, "selective-lora: weight of the L1 penalty on the block scores; larger "
                            "turns more blocks off (0 keeps all on)", ge=0.0, le=1000.0, label="Sparsity weight")
    steps: int = param(60, "training steps (batches)", ge=1, le=100_000)
    batch_size: int = param(16, "images per step", ge=1, le=1024)
    learning_rate: float = param(1e-3, "AdamW learning rate, in (0, 1]", ge=0.0, le=1.0)
    weight_decay: float = param(0.01, "AdamW weight decay", ge=0.0)
    eval_every: int = param(5, "steps between held-out evaluations", ge=1, le=100_000,
                            label="Steps between evaluations")
    patience: int = param(6, "evaluations without improvement before stopping", ge=1, le=10_000)
    unlabeled_weight: float = param(0.1, "weight of the transductive entropy term on unlabeled images", ge=0.0,
                                    label="Weight of the unlabeled images")
    compare_methods: bool = param(False, "also train Selective LoRA, LoRA on every block and a linear probe on the "
                                  "same split and score them, zero-shot and WiSE-FT mixes on the held-out images and "
                                  "the retention set: the new-task vs. retention table and plot (3 more trainings)",
                                  label="Compare with the other methods (new task vs. retention)")

    JOB_FIELDS = (*TrainingParams.JOB_FIELDS, "class_names")
    PRESET_TOOL = "finetune"

    def check(self) -> None:
        """The named classes' names, refused at submit rather than by a job that fails (their images are not
        needed to tell)."""
        super().check()
        names = tuple(named_class(name, f"class_names: named class {index + 1}")
                      for index, name in enumerate(self.class_names))
        object.__setattr__(self, "class_names", names)  # frozen: stripped once, while checking


@dataclasses.dataclass(frozen=True)
class Inputs(BaseInputs):
    """Zips (or, from the CLI, folders) with a folder per class; the images of each named class; optional
    unlabeled images of the task; optional retention images (a folder per class, other classes than the
    task's) on which forgetting is measured."""

    dataset: list[NamedFile]
    unlabeled: list[NamedFile] = dataclasses.field(default_factory=list)
    classes: list[list[NamedFile]] = dataclasses.field(default_factory=list)  # of Params.class_names, in order
    retention: list[NamedFile] = dataclasses.field(default_factory=list)

    @classmethod
    def from_roles(cls, files_of: Callable[[str], list[NamedFile]]) -> Inputs:
        """Role class_NNN holds the images of class_names[NNN]; an empty class has no role stored."""
        classes = [list(files_of(f"class_{index:03d}")) for index in range(max_classes())]
        while classes and not classes[-1]:
            classes.pop()
        return cls(list(files_of("dataset")), list(files_of("unlabeled")), classes, list(files_of("retention")))


@dataclasses.dataclass
class Result(TrainingResult):
    """The run's summary; metrics are zero-shot CLIP's and the fine-tuned model's on the held-out images.
    `retention`: zero-shot accuracy on other classes before and after (forgetting.measure_retention);
    `blocks`: Selective LoRA's block scores and active blocks; `trainable_parameters`: what the saved model keeps
    of training (head and adapters)."""

    retention: dict[str, Any] | None = None
    blocks: dict[str, Any] | None = None
    trainable_parameters: int = 0
    comparison: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # forgetting.compare_methods rows


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        on_history: HistoryCallback | None = None, device: str | None = None) -> Result:
    """Gather the classes, train, evaluate against zero-shot and write `model/`, metrics.json, history.csv and
    model.zip into `out_dir`; `on_history` gets the curves after each step (a job's live plot). With
    `compare_methods`, then the methods' trade-off: methods.json, methods.csv and methods.png."""
    from engine.finetune.classify.data import load_retention_set
    from engine.finetune.classify.forgetting import compare_methods, write_comparison
    from engine.finetune.classify.runs import train_and_save

    preset = get_preset(params.base_preset())
    progress(0.01, "Reading the examples")
    with scratch(out_dir) as work:
        data = read_inputs(inputs, params, work)
        retention = load_retention_set(inputs.retention, work)
    progress(0.02, f"Loading model {preset.label}")
    if not params.compare_methods:
        return train_and_save(data, params, out_dir, inputs.unlabeled, device, progress, on_history, retention)
    result = train_and_save(data, params, out_dir, inputs.unlabeled, device, sub_progress(progress, 0.0, 0.4),
                            on_history, retention)
    result.comparison = compare_methods(data, params, retention, device,
                                        sub_progress(progress, 0.4, 1.0))
    result.outputs += write_comparison(result.comparison, out_dir)
    return result


def read_inputs(inputs: Inputs, params: Params, work: Path) -> LabelledSet:
    """The labelled set of a run's inputs: the zips' class folders (extracted into `work`) and the images of each
    of `params.class_names`, decoded and checked (the K-shot job reads it so too)."""
    from engine.finetune.classify.data import gather_sources, load_labelled_set

    uploads = [(name, inputs.classes[index] if index < len(inputs.classes) else [])
               for index, name in enumerate(params.class_names)]
    return load_labelled_set(*gather_sources(inputs.dataset, uploads, work))
