"""A completion run and an evaluation run from files to output files: one body for jobs and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.completion.inputs import load_dataset
from engine.completion.outputs import write_outputs
from engine.errors import UserInputError
from engine.limits import check_seed
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress

DEFAULT_PRESET = "completion-owlv2-base"
DEFAULT_THRESHOLD = 0.3


def _number(params: Mapping[str, Any], key: str, default: float, kind: type = float) -> Any:
    """A numeric parameter; job parameters may arrive as text (`python -m tasks submit --param k=v`)."""
    raw = params.get(key, default)
    try:
        return kind(raw if raw not in (None, "") else default)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int() of an infinity
        raise UserInputError(f"{key} must be a {'whole ' if kind is int else ''}number, not {raw!r}.") from None


def _flag(params: Mapping[str, Any], key: str) -> bool:
    raw = params.get(key, False)
    return raw.strip().lower() in ("1", "true", "yes", "on") if isinstance(raw, str) else bool(raw)


def completion_params(params: Mapping[str, Any]):
    """CompletionParams from a job's or the CLI's parameters."""
    from engine.completion.pipeline import CompletionParams

    return CompletionParams(existing_iou=_number(params, "existing_iou", 0.5), nms_iou=_number(params, "nms_iou", 0.3),
                            min_score=_number(params, "min_score", 0.05),
                            max_per_image=_number(params, "max_per_image", 100, int),
                            text_queries=_flag(params, "text_queries")).check()


def _drawn(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = params.get("drawn_boxes") or []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"drawn_boxes is not valid JSON ({exc.msg}).") from None
        except RecursionError:
            raise UserInputError("drawn_boxes is nested too deeply to be a list of boxes.") from None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise UserInputError("drawn_boxes must be a list of {\"image\", \"box\": [x, y, w, h], \"category\"}.")
    return raw


def _engine(params: Mapping[str, Any]) -> tuple[dict[str, Any], str, Callable[[], Any]]:
    """(summary, what is loaded, loader of the callable that proposes boxes): a fine-tuned detector when
    params["detector"] names its folder, else the OWLv2 preset; checked before any file is read."""
    device = params.get("device")
    if params.get("detector"):
        from engine.finetune.artifacts import read_meta

        directory = Path(str(params["detector"]))
        meta = read_meta(directory, "detect")
        base = get_preset(meta["base_preset"])

        def load_detector():
            from engine.completion.finetuned import DetectorCompletion

            return DetectorCompletion.from_model_dir(directory, device)

        return ({"detector": meta["name"], "preset": base.name, "random_weights": base.random_weights},
                f"fine-tuned detector {meta['name']}", load_detector)
    preset = get_preset(str(params.get("preset") or DEFAULT_PRESET))
    if preset.tool != "completion":
        raise UserInputError(f"Preset {preset.name!r} is not an annotation-completion model.")

    def load_owlv2():
        from engine.completion.pipeline import get_pipeline

        return get_pipeline(preset.name, device)

    return {"preset": preset.name, "random_weights": preset.random_weights}, f"model {preset.label}", load_owlv2


def _prepare(files: Sequence[tuple[str, Path]], work_dir: Path, params: Mapping[str, Any],
             video: tuple[str, Path] | None, progress: ProgressCallback):
    summary, label, load = _engine(params)
    threshold = _number(params, "score_threshold", DEFAULT_THRESHOLD)
    if not 0.0 <= threshold <= 1.0:
        raise UserInputError(f"score_threshold must be between 0 and 1, not {threshold}.")
    completion = completion_params(params)
    progress(0.0, "Reading the images and annotations")
    dataset = load_dataset(files, work_dir, str(params.get("format") or "auto"), video,
                           _number(params, "video_stride", 30, int), _drawn(params), sub_progress(progress, 0.0, 0.05))
    progress(0.05, f"Loading {label}")
    return load(), dataset, completion, threshold, summary


def run_completion(files: Sequence[tuple[str, Path]], work_dir: Path, out_dir: Path, params: Mapping[str, Any],
                   video: tuple[str, Path] | None = None,
                   progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], list[str]]:
    """Import, propose the missing boxes, write proposals.json, previews and the completed set."""
    pipeline, dataset, completion, threshold, summary = _prepare(files, work_dir, params, video, progress)
    result = pipeline(dataset, completion, progress=sub_progress(progress, 0.08, 0.95))
    progress(0.96, "Writing proposals and exports")
    return write_outputs(out_dir, result, {**summary, "mode": "complete"}, threshold)


def run_evaluation(files: Sequence[tuple[str, Path]], work_dir: Path, out_dir: Path, params: Mapping[str, Any],
                   progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], list[str]]:
    """Hide a seeded fraction of a fully annotated set's boxes, complete, report recall and precision."""
    from engine.completion.evaluation import evaluate_completion

    fraction, seed = _number(params, "drop_fraction", 0.3), check_seed(_number(params, "seed", 0, int))
    pipeline, dataset, completion, threshold, summary = _prepare(files, work_dir, params, None, progress)
    report, result = evaluate_completion(pipeline, dataset, fraction, seed, completion, threshold,
                                         sub_progress(progress, 0.08, 0.95))
    progress(0.96, "Writing the report and proposals")
    report = {**summary, "mode": "evaluate", **report}
    _, files_written = write_outputs(out_dir, result, {**summary, "mode": "evaluate"}, threshold)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=1))
    return report, ["metrics.json", *files_written]
