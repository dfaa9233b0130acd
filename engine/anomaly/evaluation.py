"""Evaluation on a labelled folder in the MVTec AD layout: scores, maps, metrics and a ROC plot.

    <root>/train/good/*.png                            good images (few-normal-shot references)
    <root>/test/good/*.png, <root>/test/<defect>/*.png test images
    <root>/ground_truth/<defect>/<stem>_mask.png       defect masks (non-zero = defect)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engine.anomaly import evaluate
from engine.anomaly.methods import get_method
from engine.anomaly.metrics import evaluate as evaluate_metrics
from engine.anomaly.metrics import roc_curve
from engine.anomaly.scorers import Scorer
from engine.errors import UserInputError
from engine.media import decode_image, list_images, load_image
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.tables import write_records
from engine.visualize import line_chart


@dataclass
class LabelledImage:
    path: Path
    defect_type: str | None  # None for good images
    mask_path: Path | None


@dataclass
class LabelledSet:
    test: list[LabelledImage]
    train_good: list[Path]
    warnings: list[str] = field(default_factory=list)


def read_mvtec_folder(root: str | Path) -> LabelledSet:
    """List a labelled folder; missing masks are reported as warnings, not errors."""
    root = Path(root)
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise UserInputError(f"{root.name}: no test/ folder. Expected the MVTec AD layout: test/good/*.png, "
                             "test/<defect>/*.png, ground_truth/<defect>/<name>_mask.png, optional train/good/.")
    dataset = LabelledSet(test=[], train_good=list_images(root / "train" / "good"))
    for folder in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        defect = None if folder.name == "good" else folder.name
        missing = 0
        for path in list_images(folder):
            mask = root / "ground_truth" / folder.name / f"{path.stem}_mask.png" if defect else None
            if mask is not None and not mask.is_file():
                mask, missing = None, missing + 1
            dataset.test.append(LabelledImage(path, defect, mask))
        if missing:
            dataset.warnings.append(f"{missing} image(s) of defect type '{folder.name}' have no mask in "
                                    f"ground_truth/{folder.name}/: they count for image metrics only.")
    labels = {item.defect_type is not None for item in dataset.test}
    if labels != {True, False}:
        raise UserInputError(f"{root.name}/test: evaluation needs both good images (test/good/) and defective ones "
                             "(test/<defect>/).")
    return dataset


def _read_mask(path: Path, size: tuple[int, int], name: str, notes: list[str]) -> np.ndarray:
    """A defect mask (non-zero = defect) at the image's size; decoded as every upload is (bounded, first page noted)."""
    with decode_image(path, name, notes) as mask:
        mask = mask.convert("L")
        if mask.size != size:
            mask = mask.resize(size, Image.NEAREST)
        return np.asarray(mask) > 0


def evaluate_folder(scorer: Scorer, root: str | Path, params: evaluate.Params,
                    progress: ProgressCallback = ignore_progress) -> evaluate.Result:
    """Score every test image with one method (the first `params.shots` train/good images as its good parts),
    then the metrics, overall and per defect type. A set method (MuSc) scores the whole test split as its set,
    as the paper does. An image or mask of several pages is used by its first, and a warning says so."""
    dataset = read_mvtec_folder(root)
    shots = params.shots
    if len(dataset.train_good) < shots:
        raise UserInputError(f"{shots} reference shots asked for, but train/good/ has {len(dataset.train_good)}.")

    def shown(path: Path) -> str:
        return path.relative_to(Path(root)).as_posix()

    progress(0.0, f"{scorer.method.label}: preparing")
    scorer.prepare(params, [load_image(p, shown(p), dataset.warnings) for p in dataset.train_good[:shots]])
    images = [load_image(item.path, shown(item.path), dataset.warnings) for item in dataset.test]
    started = time.perf_counter()
    results = scorer.score(images, progress=sub_progress(progress, 0.0, 0.95))
    seconds = (time.perf_counter() - started) / len(images)
    labels, scores, masks, maps, types, rows = [], [], [], [], [], []
    for item, image, result in zip(dataset.test, images, results, strict=True):
        labels.append(int(item.defect_type is not None))
        scores.append(result.score)
        maps.append(result.anomaly_map)
        if item.mask_path:
            masks.append(_read_mask(item.mask_path, image.size, shown(item.mask_path), dataset.warnings))
        else:  # a good image has no defect pixels; a defect image without a mask counts for image metrics only
            masks.append(np.zeros(result.anomaly_map.shape, bool) if item.defect_type is None else None)
        types.append(item.defect_type)
        rows.append({"file": shown(item.path), "defect_type": item.defect_type or "good",
                     "score": round(result.score, 6)})
    progress(0.96, f"{scorer.method.label}: computing metrics")
    preset = get_preset(params.preset)
    return evaluate.Result(params.object_name, shots, evaluate_metrics(labels, scores, masks, maps, types), rows,
                           dataset.warnings, [a.tolist() for a in roc_curve(labels, scores)[:2]], preset.name,
                           preset.random_weights, scorer.method.name, round(seconds, 4))


def run_label(result: evaluate.Result) -> str:
    """How a run is named in the comparison: method, shots and model."""
    method = get_method(result.method)
    shots = "zero-shot" if not result.shots else f"{result.shots}-shot"
    if method.name == "winclip" and result.shots:
        return f"WinCLIP+ {shots} · {result.preset}"
    return f"{method.label} {shots} · {result.preset}"


def compare(results: Sequence[evaluate.Result]) -> evaluate.Result:
    """The first run's result, with every run's overall metrics, speed and ROC curve in `comparison` (when there
    are several)."""
    first = results[0]
    if len(results) > 1:
        first.comparison = [
            {"run": run_label(r), "method": r.method, "preset": r.preset, "shots": r.shots,
             "metrics": {k: v for k, v in r.metrics.items() if k != "per_defect_type"},
             "seconds_per_image": r.seconds_per_image, "roc": r.roc}
            for r in results
        ]
    return first


ROC_COLOURS = ((200, 30, 30), (30, 80, 200), (30, 150, 60), (220, 130, 0), (140, 60, 170), (0, 150, 160))


def roc_plot(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, size: int = 360
             ) -> Image.Image:
    """ROC curves (name, fpr, tpr) in one plot with the chance diagonal; a legend when there are several."""
    lines = [(fpr, tpr, colour) for (_, fpr, tpr), colour in zip(curves, ROC_COLOURS, strict=False)]
    legend = [(name, colour) for (name, _, _), colour in zip(curves, ROC_COLOURS, strict=False)] if len(curves) > 1 \
        else []
    return line_chart([([0, 1], [0, 1], (180, 180, 180)), *lines], (0, 1), (0, 1), title, "false positive rate",
                      "TPR", (size, size), legend)


def write_report(report: evaluate.Result, out_dir: Path) -> list[str]:
    """metrics.json (the result), scores.csv and roc.png in `out_dir`; returns the file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(report.to_json(), indent=2))
    write_records(out_dir / "scores.csv", ["file", "defect_type", "score"], report.images)
    if report.comparison:
        curves = [(f"{run['run'].split(' · ')[0]} {run['metrics']['image_auroc']:.3f}", *run["roc"])
                  for run in report.comparison]
        roc_plot(curves, f"image-level ROC, AUROC per method ({report.object_name})", size=420).save(
            out_dir / "roc.png")
    else:
        title = (f"image-level ROC, AUROC {report.metrics['image_auroc']:.3f} ({report.object_name}, "
                 f"{report.shots}-shot)")
        roc_plot([("", *report.roc)], title).save(out_dir / "roc.png")
    return ["metrics.json", "scores.csv", "roc.png"]
