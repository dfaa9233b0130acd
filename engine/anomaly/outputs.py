"""Files of an anomaly run, the same for jobs and the CLI: per-image maps, overlays and scores.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from engine.anomaly.pipeline import AnomalyResult
from engine.presets import Preset
from engine.visualize import heatmap_overlay, map_to_png16

MAP_ENCODING = "16-bit grayscale PNG, value = score x 65535"


def run_summary(object_name: str, preset: Preset, references: Sequence[Image.Image] | None,
                skipped: list[dict[str, str]]) -> dict[str, Any]:
    """What a run was asked to do, recorded beside its scores."""
    return {
        "object_name": object_name.strip(),
        "preset": preset.name,
        "random_weights": preset.random_weights,
        "mode": f"WinCLIP+ ({len(references)} good references)" if references else "zero-shot",
        "skipped": skipped,
    }


def write_outputs(
    out_dir: Path,
    names: Sequence[str],
    images: Sequence[Image.Image],
    results: Sequence[AnomalyResult],
    summary: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """Write `<index>_<stem>_map.png`, `..._overlay.png` per image and `scores.json`.

    Returns the scores summary (also written as scores.json) and the written file names.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    records, files = [], []
    for index, (name, image, result) in enumerate(zip(names, images, results, strict=True)):
        stem = f"{index:03d}_{Path(name).stem}"
        map_name, overlay_name = f"{stem}_map.png", f"{stem}_overlay.png"
        map_to_png16(result.anomaly_map).save(out_dir / map_name)
        heatmap_overlay(image, result.anomaly_map).save(out_dir / overlay_name)
        files += [map_name, overlay_name]
        records.append({
            "file": name,
            "score": round(result.score, 6),
            "width": image.width,
            "height": image.height,
            "map_min": round(float(result.anomaly_map.min()), 6),
            "map_max": round(float(result.anomaly_map.max()), 6),
            "map": map_name,
            "overlay": overlay_name,
        })
    summary = {**summary, "map_encoding": MAP_ENCODING, "images": records}
    (out_dir / "scores.json").write_text(json.dumps(summary, indent=2))
    return summary, [*files, "scores.json"]
