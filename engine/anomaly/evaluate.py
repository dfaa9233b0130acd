"""Job kind `anomaly_evaluate`: metrics of a labelled set in the MVTec AD layout (a zip, or a folder from the
CLI): image and pixel AUROC, PRO and F1-max, overall and per defect type, with the scores and a ROC plot.

Torch-free at import: the web process checks a job's parameters with `Params` before storing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.anomaly.common import AnomalyParams, load_pipeline
from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param, scratch
from engine.params import Result as BaseResult
from engine.progress import ProgressCallback, ignore_progress, sub_progress

LAYOUT = "test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png, train/good"


@dataclass(frozen=True)
class Params(AnomalyParams):
    shots: int = param(0, "good references from train/good (WinCLIP+); 0 = zero-shot", ge=0, le=64,
                       label="Good reference shots (0 = zero-shot)")


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


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    from engine.anomaly.evaluation import evaluate_folder, write_report
    from engine.archives import extract_zip, find_folder_with

    if len(inputs.dataset) != 1:
        raise UserInputError(f"Upload one .zip of a labelled set in the MVTec AD layout ({LAYOUT}).")
    name, path = inputs.dataset[0]
    with scratch(out_dir) as work:
        if path.is_dir():
            root = path
        else:
            progress(0.01, f"Extracting {name}")
            root = find_folder_with(extract_zip(path, work / "dataset", display_name=name), "test", name)
        pipeline = load_pipeline(params.preset, sub_progress(progress, 0.02, 0.05), device)
        result = evaluate_folder(pipeline, root, params, progress=sub_progress(progress, 0.05, 0.97))
    result.outputs = write_report(result, out_dir)
    return result
