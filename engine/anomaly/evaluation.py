"""Evaluation on a labelled folder in the MVTec AD layout: scores, maps, metrics and a ROC plot.

    <root>/train/good/*.png                            good images (few-normal-shot references)
    <root>/test/good/*.png, <root>/test/<defect>/*.png test images
    <root>/ground_truth/<defect>/<stem>_mask.png       defect masks (non-zero = defect)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engine.anomaly import evaluate
from engine.anomaly.metrics import evaluate as evaluate_metrics
from engine.anomaly.metrics import roc_curve
from engine.anomaly.pipeline import WinClipPipeline
from engine.errors import UserInputError
from engine.media import list_images, load_image
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress
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


def _read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as mask:
        mask = mask.convert("L")
        if mask.size != size:
            mask = mask.resize(size, Image.NEAREST)
        return np.asarray(mask) > 0


def evaluate_folder(pipeline: WinClipPipeline, root: str | Path, params: evaluate.Params,
                    progress: ProgressCallback = ignore_progress) -> evaluate.Result:
    """Score every test image (zero-shot, or WinCLIP+ with the first `params.shots` train/good images),
    then the metrics, overall and per defect type."""
    dataset = read_mvtec_folder(root)
    shots = params.shots
    references = None
    if shots:
        if len(dataset.train_good) < shots:
            raise UserInputError(f"{shots} reference shots asked for, but train/good/ has {len(dataset.train_good)}.")
        references = pipeline.reference_memory([load_image(p) for p in dataset.train_good[:shots]])
    labels, scores, masks, maps, types, rows = [], [], [], [], [], []
    step = sub_progress(progress, 0.0, 0.95)
    for index, item in enumerate(dataset.test):
        image = load_image(item.path)
        result = pipeline([image], params.object_name, references=references)[0]
        labels.append(int(item.defect_type is not None))
        scores.append(result.score)
        maps.append(result.anomaly_map)
        masks.append(_read_mask(item.mask_path, image.size) if item.mask_path else
                     (np.zeros(result.anomaly_map.shape, bool) if item.defect_type is None else None))
        types.append(item.defect_type)
        rows.append({"file": str(item.path.relative_to(Path(root))), "defect_type": item.defect_type or "good",
                     "score": round(result.score, 6)})
        step((index + 1) / len(dataset.test), f"Scored {index + 1} of {len(dataset.test)} test images")
    progress(0.96, "Computing metrics")
    preset = get_preset(params.preset)
    return evaluate.Result(params.object_name, shots, evaluate_metrics(labels, scores, masks, maps, types), rows,
                           dataset.warnings, [a.tolist() for a in roc_curve(labels, scores)[:2]], preset.name,
                           preset.random_weights)


def roc_plot(fpr: Sequence[float], tpr: Sequence[float], title: str, size: int = 360) -> Image.Image:
    """A small ROC plot: the curve and the chance diagonal."""
    return line_chart([([0, 1], [0, 1], (180, 180, 180)), (fpr, tpr, (200, 30, 30))], (0, 1), (0, 1), title,
                      "false positive rate", "TPR", (size, size))


def write_report(report: evaluate.Result, out_dir: Path) -> list[str]:
    """metrics.json (the result), scores.csv and roc.png in `out_dir`; returns the file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(report.to_json(), indent=2))
    with open(out_dir / "scores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "defect_type", "score"])
        writer.writeheader()
        writer.writerows(report.images)
    title = f"image-level ROC, AUROC {report.metrics['image_auroc']:.3f} ({report.object_name}, {report.shots}-shot)"
    roc_plot(*report.roc, title=title).save(out_dir / "roc.png")
    return ["metrics.json", "scores.csv", "roc.png"]
