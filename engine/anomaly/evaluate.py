"""Job kind `anomaly_evaluate`: metrics of a labelled set in the MVTec AD layout (a zip, or a folder from the
CLI): image and pixel AUROC, PRO and F1-max, overall and per defect type, with the scores and a ROC plot; with
several methods, one comparison table (and seconds per image) and their ROC curves in one plot.

Torch-free at import: the web process checks a job's parameters with `Params` before storing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.anomaly.common import AnomalyParams, load_scorer
from engine.anomaly.methods import METHODS
from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, check_one, param, scratch
from engine.params import Result as BaseResult
from engine.presets import PRESETS, presets_for
from engine.progress import ProgressCallback, ignore_progress, sub_progress

LAYOUT = "test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png, train/good"
ONE_DATASET = f"Upload one .zip of a labelled set in the MVTec AD layout ({LAYOUT})."
METHODS_HELP = (f"methods or presets to compare in one table ({', '.join(METHODS)} take their real model; preset "
                "names such as musc-tiny pick one); empty: the method and model above")


@dataclass(frozen=True)
class Params(AnomalyParams):
    shots: int = param(0, "good references from train/good (WinCLIP+, AnomalyDINO; MuSc adds them to its set); "
                          "0 = zero-shot", ge=0, le=64, label="Good reference shots (0 = zero-shot)")
    methods: tuple[str, ...] = param((), METHODS_HELP, le=6, label="Methods to compare")

    def runs(self) -> list[AnomalyParams]:
        """(method, preset) of each run, checked: `methods` in order (repeats dropped), else the one above."""
        if not self.methods:
            return [AnomalyParams(method=self.method, object_name=self.object_name, preset=self.preset)]
        runs = [_run(entry) for entry in self.methods]
        return list({run.preset: run for run in runs}.values())

    def presets(self) -> tuple[str, ...]:
        return tuple(run.preset for run in self.runs())

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        check_one(files.get("dataset", ()), ONE_DATASET)

    def check(self) -> None:
        super().check()
        for run in self.runs():
            if METHODS[run.method].references == "required" and self.shots == 0:
                raise UserInputError(f"shots: {METHODS[run.method].label} compares with good parts from train/good: "
                                     "set 1 or more.")


def _run(entry: str) -> AnomalyParams:
    """A compared run named by a method (its real model) or by an anomaly preset."""
    if entry in METHODS:
        return AnomalyParams(method=entry)
    if entry not in PRESETS or PRESETS[entry].tool != "anomaly":
        accepted = [*METHODS, *(preset.name for preset in presets_for("anomaly"))]
        raise UserInputError(f"methods: each one of {', '.join(accepted)}, not {entry!r}.")
    return AnomalyParams(preset=entry)


@dataclass(frozen=True)
class Inputs(BaseInputs):
    dataset: list[NamedFile]  # one zip (or, from the CLI, one folder) in the MVTec AD layout


@dataclass
class Result(BaseResult):
    object_name: str
    shots: int
    metrics: dict[str, Any]  # engine.anomaly.metrics.evaluate: overall, and "per_defect_type"
    images: list[dict[str, Any]]  # per test image: file, defect_type, score
    warnings: list[str]
    roc: list[list[float]]  # [fpr, tpr] of the image-level ROC curve
    preset: str
    random_weights: bool
    method: str = "winclip"
    seconds_per_image: float | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)  # per run: method, preset, mode, overall
    # metrics, seconds_per_image and roc; the first run is the one above (its details are the fields above)


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    from engine.anomaly.evaluation import compare, evaluate_folder, write_report
    from engine.archives import extract_zip, find_folder_with

    check_one(inputs.dataset, ONE_DATASET)
    name, path = inputs.dataset[0]
    with scratch(out_dir) as work:
        if path.is_dir():
            root = path
        else:
            progress(0.01, f"Extracting {name}")
            root = find_folder_with(extract_zip(path, work / "dataset", display_name=name), "test", name)
        runs = params.runs()
        results = []
        for index, run_params in enumerate(runs):
            span = sub_progress(progress, 0.02 + 0.95 * index / len(runs), 0.02 + 0.95 * (index + 1) / len(runs))
            scorer = load_scorer(run_params.preset, sub_progress(span, 0.0, 0.05), device)
            results.append(evaluate_folder(scorer, root, params.replace(method=run_params.method,
                                                                        preset=run_params.preset, methods=()),
                                           progress=sub_progress(span, 0.05, 1.0)))
        result = compare(results)
    result.outputs = write_report(result, out_dir)
    return result
