"""Files of an anomaly run, the same for jobs and the CLI: per-image maps, overlays, scores.json and .csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from engine.anomaly.pipeline import AnomalyResult
from engine.anomaly.thresholds import Threshold
from engine.naming import file_key
from engine.params import Result
from engine.presets import Preset
from engine.visualize import inspection_overlay, map_to_png16

MAP_ENCODING = "16-bit grayscale PNG, value = score x 65535"


SCORE_COLUMNS = ["file", "score", "verdict", "width", "height", "map_max"]
FRAME_COLUMNS = ["frame", "time_s", "score", "verdict", "map_max"]


def run_summary(object_name: str, preset: Preset, references: Sequence[Image.Image] | None,
                skipped: list[dict[str, str]], threshold: Threshold,
                reference_set: str | None = None) -> dict[str, Any]:
    """What a run was asked to do, recorded beside its scores."""
    mode = "zero-shot"
    if references:
        mode = f"WinCLIP+ ({len(references)} good references" + (f" from set '{reference_set}')" if reference_set
                                                                    else ")")
    return {
        "object_name": object_name.strip(),
        "preset": preset.name,
        "random_weights": preset.random_weights,
        "mode": mode,
        "threshold": threshold,
        "skipped": skipped,
        "warnings": [],
    }


def size_warnings(test_sizes: set[tuple[int, int]], references: Sequence[Image.Image] | None) -> list[str]:
    """Say so when good references and test images differ in size or shape: both are resized to the
    model's square input, so a different framing or aspect ratio makes every patch look different."""
    if not references:
        return []
    reference_sizes = {img.size for img in references}
    if test_sizes == reference_sizes:
        return []

    def describe(sizes: set[tuple[int, int]]) -> str:
        return ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4]) + (" ..." if len(sizes) > 4 else "")

    return [f"The good references are {describe(reference_sizes)} pixels but the images inspected are "
            f"{describe(test_sizes)}. Both are resized to the model's input, so WinCLIP+ compares them anyway, "
            "but parts framed differently score as anomalous: use references taken like the test images."]


def write_maps(out_dir: Path, names: Sequence[str], images: Sequence[Image.Image],
               results: Sequence[AnomalyResult], threshold: Threshold) -> tuple[list[dict[str, Any]], list[str]]:
    """Write `<index>_<stem>_map.png`, `..._overlay.png` per image (keys from engine.naming.file_key, so any
    display name works and none collide); returns each image's record and the written file names.

    The overlay outlines the regions above the threshold's pixel value; each record gets the
    verdict of its image value.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    records, files = [], []
    for index, (name, image, result) in enumerate(zip(names, images, results, strict=True)):
        map_name, overlay_name = file_key(name, index, "_map.png"), file_key(name, index, "_overlay.png")
        map_to_png16(result.anomaly_map).save(out_dir / map_name)
        inspection_overlay(image, result.anomaly_map, threshold.pixel).save(out_dir / overlay_name)
        files += [map_name, overlay_name]
        records.append({
            "file": name,
            "score": round(result.score, 6),
            "verdict": threshold.verdict(result.score),
            "width": image.width,
            "height": image.height,
            "map_min": round(float(result.anomaly_map.min()), 6),
            "map_max": round(float(result.anomaly_map.max()), 6),
            "map": map_name,
            "overlay": overlay_name,
        })
    return records, files


def write_summary(path: Path, result: Result) -> None:
    """scores.json: the run's result, exactly as the job records it."""
    path.write_text(json.dumps(result.to_json(), indent=2))


def write_score_table(path: Path, records: Sequence[dict[str, Any]], skipped: Sequence[dict[str, str]] = (),
                      columns: Sequence[str] = SCORE_COLUMNS) -> None:
    """CSV of file, score, verdict (and size); files that could not be read are listed with the reason."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "error"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        writer.writerows({"file": item["file"], "verdict": "skipped", "error": item["error"]} for item in skipped)
