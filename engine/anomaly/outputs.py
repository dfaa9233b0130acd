"""Files of an anomaly run, the same for jobs and the CLI: per-image maps, overlays, result cards,
scores.json and .csv."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from engine.anomaly.common import score_text
from engine.anomaly.methods import Method
from engine.anomaly.pipeline import AnomalyResult
from engine.anomaly.thresholds import Threshold
from engine.naming import file_key
from engine.params import Result
from engine.presets import Preset
from engine.tables import write_records
from engine.visualize import fit_text, heatmap_overlay, inspection_overlay, label_font, map_to_png16, region_tint

MAP_ENCODING = "16-bit grayscale PNG, value = score x 65535"
CARD_PANEL_SIDE = (240, 480)  # long side of each card panel in pixels: small parts enlarged, large ones reduced
CARD_PANEL_TITLES = ("Image", "Heat map", "Above threshold")
VERDICT_COLOURS = {"OK": (46, 125, 50), "NG": (198, 40, 40)}  # badge fill: green, red


SCORE_COLUMNS = ["file", "score", "verdict", "width", "height", "map_max"]
FRAME_COLUMNS = ["frame", "time_s", "score", "verdict", "map_max"]


def with_references(method: Method) -> str:
    """The method's name when good references are given: WinCLIP becomes WinCLIP+ (the paper's name)."""
    return "WinCLIP+" if method.name == "winclip" else method.label


def run_summary(object_name: str, preset: Preset, method: Method, references: Sequence[Image.Image] | None,
                skipped: list[dict[str, str]], threshold: Threshold,
                reference_set: str | None = None) -> dict[str, Any]:
    """What a run was asked to do, recorded beside its scores."""
    source = f" from set '{reference_set}'" if reference_set else ""
    count = len(references or ())
    if method.references == "join the set":
        mode = f"{method.label} (zero-shot over the set" + (f"; {count} good parts joined it{source})" if count
                                                             else ")")
    elif count:
        mode = f"{with_references(method)} ({count} good references{source})"
    else:
        mode = f"{method.label} (zero-shot)"
    return {
        "object_name": object_name.strip(),
        "preset": preset.name,
        "method": method.name,
        "random_weights": preset.random_weights,
        "mode": mode,
        "threshold": threshold,
        "skipped": skipped,
        "warnings": [],
    }


def size_warnings(test_sizes: set[tuple[int, int]], references: Sequence[Image.Image] | None,
                  method: Method) -> list[str]:
    """Say so when good references and test images differ in size or shape: both are resized to the
    model's square input, so a different framing or aspect ratio makes every patch look different. The
    warning names `method`, the one that compared them."""
    if not references:
        return []
    reference_sizes = {img.size for img in references}
    if test_sizes == reference_sizes:
        return []

    def describe(sizes: set[tuple[int, int]]) -> str:
        return ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4]) + (" ..." if len(sizes) > 4 else "")

    return [f"The good references are {describe(reference_sizes)} pixels but the images inspected are "
            f"{describe(test_sizes)}. Both are resized to the model's input, so {with_references(method)} compares "
            "them anyway, but parts framed differently score as anomalous: use references taken like the test images."]


def card_panel_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of each panel of a result card: the image's aspect, its long side within CARD_PANEL_SIDE."""
    width, height = image_size
    low, high = CARD_PANEL_SIDE
    scale = min(max(max(width, height), low), high) / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def card_line(score: float, threshold: Threshold, title: str) -> str:
    """The card's header beside the badge: score, image threshold and the file."""
    return f"score {score_text(score)} · threshold {score_text(threshold.image)} · {title}"


def result_card(image: Image.Image, anomaly_map: np.ndarray, threshold: Threshold, score: float,
                title: str) -> Image.Image:
    """A part's result at a glance, like anomalib's prediction images: the image | its heat map | the region
    above the pixel threshold, side by side, under an OK / NG badge (green / red), the score and the threshold.

    Lettering scales with the panels, so it stays readable when the card is shown small in a gallery.
    """
    verdict = threshold.verdict(score)
    size = card_panel_size(image.size)
    photo = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    scores = np.asarray(Image.fromarray(anomaly_map.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    region = scores > threshold.pixel
    panels = (photo, heatmap_overlay(photo, scores), region_tint(photo, region))
    titles = (*CARD_PANEL_TITLES[:2], CARD_PANEL_TITLES[2] + ("" if region.any() else ": none"))
    text_px = max(12, round(max(size) / 16))
    gap = max(4, text_px // 2)
    badge_font, text_font, title_font = label_font(round(text_px * 1.3)), label_font(text_px), label_font(
        round(text_px * 0.8))
    header = round(text_px * 2.2)
    top = header + round(text_px * 1.4)  # panel titles between the header and the panels
    card = Image.new("RGB", (3 * size[0] + 4 * gap, top + size[1] + gap), "white")
    draw = ImageDraw.Draw(card)
    badge_width = round(draw.textlength("NG", font=badge_font)) + 2 * gap
    draw.rounded_rectangle([gap, gap, gap + badge_width, header], radius=gap, fill=VERDICT_COLOURS[verdict])
    draw.text((gap + badge_width / 2, (gap + header) / 2), verdict, fill="white", font=badge_font, anchor="mm")
    line = card_line(score, threshold, title)
    draw.text((2 * gap + badge_width + gap, (gap + header) / 2),
              fit_text(draw, line, text_font, card.width - badge_width - 5 * gap), fill=(30, 30, 30),
              font=text_font, anchor="lm")
    for index, (panel, name) in enumerate(zip(panels, titles, strict=True)):
        left = gap + index * (size[0] + gap)
        draw.text((left, top - round(text_px * 0.3)), fit_text(draw, name, title_font, size[0]), fill=(80, 80, 80),
                  font=title_font, anchor="ld")
        card.paste(panel, (left, top))
    return card


def write_maps(out_dir: Path, names: Sequence[str], images: Sequence[Image.Image],
               results: Sequence[AnomalyResult], threshold: Threshold) -> tuple[list[dict[str, Any]], list[str]]:
    """Write `<index>_<stem>_map.png`, `..._overlay.png` and `..._card.png` per image (keys from
    engine.naming.file_key, so any display name works and none collide); returns each image's record and
    the written file names.

    The overlay outlines the regions above the threshold's pixel value; the card (see `result_card`) shows
    the verdict; each record gets the verdict of its image value.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    records, files = [], []
    for index, (name, image, result) in enumerate(zip(names, images, results, strict=True)):
        map_name, overlay_name, card_name = (file_key(name, index, suffix)
                                             for suffix in ("_map.png", "_overlay.png", "_card.png"))
        map_to_png16(result.anomaly_map).save(out_dir / map_name)
        inspection_overlay(image, result.anomaly_map, threshold.pixel).save(out_dir / overlay_name)
        result_card(image, result.anomaly_map, threshold, result.score, name).save(out_dir / card_name)
        files += [map_name, overlay_name, card_name]
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
            "card": card_name,
        })
    return records, files


def write_summary(path: Path, result: Result) -> None:
    """scores.json: the run's result, exactly as the job records it."""
    path.write_text(json.dumps(result.to_json(), indent=2))


def write_score_table(path: Path, records: Sequence[dict[str, Any]], skipped: Sequence[dict[str, str]] = (),
                      columns: Sequence[str] = SCORE_COLUMNS) -> None:
    """CSV of file, score, verdict (and size); files that could not be read are listed with the reason."""
    write_records(path, [*columns, "error"], [*records, *({"file": item["file"], "verdict": "skipped",
                                                            "error": item["error"]} for item in skipped)])
