"""Job kind `completion_evaluate`: hide a seeded fraction of a fully annotated set's boxes, complete the rest and
report recall and precision (metrics.json, with the proposals and exports). Torch-free until `run`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import params as contract
from engine.completion import complete
from engine.params import NamedFile, param, scratch
from engine.progress import ProgressCallback, ignore_progress, sub_progress

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Params(complete.Params):
    drop_fraction: float = param(0.3, "fraction of the boxes hidden (between 0 and 1, exclusive)", ge=0, le=1,
                                 label="Fraction of boxes hidden")
    seed: int = param(0, "seed of the boxes hidden", ge=0, le=2**32 - 1, label="Seed")


@dataclass(frozen=True)
class Inputs(contract.Inputs):
    images: list[NamedFile]  # images and/or zips (with the annotations inside, or not)
    annotations: list[NamedFile]


@dataclass
class Result(contract.Result):
    preset: str
    random_weights: bool
    mode: str
    fraction: float
    seed: int
    boxes: int
    hidden: int
    images: int
    metrics: dict[str, Any]
    curve: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    detector: str | None = None  # the fine-tuned detector's name, when one proposed the boxes
    notes: list[str] = field(default_factory=list)  # images used only in part (the first page of a TIFF)


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Hide boxes, complete, and write metrics.json (the result), proposals.json, previews and exports."""
    from engine.completion.evaluation import evaluate_completion
    from engine.completion.inputs import prepare
    from engine.completion.outputs import write_outputs

    with scratch(out_dir) as work_dir:
        pipeline, dataset, summary = prepare([*inputs.images, *inputs.annotations], work_dir, params, None, progress)
        report, completed = evaluate_completion(pipeline, dataset, params, sub_progress(progress, 0.08, 0.95))
        progress(0.96, "Writing the report and proposals")
        result = Result(**summary, mode="evaluate", **report)
        written = write_outputs(out_dir, completed, {**summary, "mode": "evaluate"}, params.score_threshold)
    (out_dir / METRICS_FILE).write_text(json.dumps(result.to_json(), indent=1))
    result.outputs = [METRICS_FILE, *written]
    return result
