"""Forgetting measured: zero-shot accuracy on a retention set of other classes, before and after fine-tuning,
and the trade-off between the new task and retention across methods (the paper's trade-off figure).

Retention = accuracy of the classifier's image tower (fine-tuned, or at WiSE-FT mix 0: the original tower)
against the text head of the retention classes ("a photo of a {class}."; CLIP's text tower is never
fine-tuned). A linear probe changes only its own head, so its retention is the zero-shot one exactly.

The retention set is the user's (class folders or zips, like the training data) or, by default, a generated
one: RETENTION_SHAPES drawn filled, in random colours, sizes, positions and rotations on a random plain
background, 8 per class at 128 px, from a fixed seed (numpy + Pillow, supersampled 4x for smooth edges), so
every run measures the same images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.device import select_device
from engine.errors import UserInputError
from engine.finetune.classify import Params
from engine.finetune.classify.data import LabelledSet, split_held_out
from engine.finetune.classify.model import CLIPClassifier, base_model, text_head
from engine.finetune.classify.train import evaluate, to_tensor
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.tables import write_records
from engine.visualize import fit_text, label_font

RETENTION_SHAPES = ("circle", "square", "triangle", "star", "hexagon")
GENERATED = "generated shapes"
WISE_ALPHAS = (0.25, 0.5, 0.75)
COMPARED = ("selective-lora", "lora", "linear")
_SS = 4  # supersampling of the drawn shapes


def _polygon(kind: str, cx: float, cy: float, radius: float, turn: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3, "hexagon": 6, "star": 10}[kind]
    points = []
    for k in range(corners):
        r = radius * (0.45 if kind == "star" and k % 2 else 1.0)
        angle = turn + 2 * math.pi * k / corners
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def generated_retention_set(per_class: int = 8, size: int = 128, seed: int = 0) -> LabelledSet:
    """RETENTION_SHAPES drawn deterministically: the default retention set."""
    rng = np.random.default_rng(seed)
    data = LabelledSet(classes=list(RETENTION_SHAPES))
    for label, kind in enumerate(RETENTION_SHAPES):
        for index in range(per_class):
            background, colour = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            while np.abs(colour - background).sum() < 200:  # a shape that stands out from its background
                colour = rng.integers(0, 256, 3)
            big = Image.new("RGB", (size * _SS, size * _SS), tuple(int(v) for v in background))
            draw = ImageDraw.Draw(big)
            radius = size * _SS * rng.uniform(0.22, 0.38)
            cx, cy = (size * _SS / 2 + rng.uniform(-0.1, 0.1, 2) * size * _SS).tolist()
            fill = tuple(int(v) for v in colour)
            if kind == "circle":
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
            else:
                draw.polygon(_polygon(kind, cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=fill)
            data.names.append(f"{kind}_{index}.png")
            data.images.append(big.reduce(_SS))
            data.labels.append(label)
    return data


@dataclass
class Retention:
    """A retention set ready to score: its classes' text head, the images as model input, their labels."""

    classes: list[str]
    source: str
    head: torch.Tensor
    pixels: torch.Tensor
    labels: list[int]


def prepare_retention(data: LabelledSet | None, preset_name: str, device: torch.device) -> Retention:
    """The user's retention set, or the generated one when `data` is None, for `preset_name`'s model."""
    model, tokenizer, preprocess = base_model(get_preset(preset_name), device)
    source = "given" if data is not None else GENERATED
    data = data if data is not None else generated_retention_set()
    return Retention(data.classes, source, text_head(model, tokenizer, data.classes, device).cpu(),
                     to_tensor(data.images, preprocess), list(data.labels))


def retention_accuracy(features: torch.Tensor, head: torch.Tensor, labels: Sequence[int]) -> float:
    """Share of images whose nearest class text (the largest features @ head.T) is their own class."""
    predicted = (features.float() @ head.float().T).argmax(1).tolist()
    return sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(predicted)


@torch.no_grad()
def tower_features(classifier: CLIPClassifier, pixels: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    classifier.eval()
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(pixels[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(pixels), batch_size)])


def measure_retention(classifier: CLIPClassifier, retention: Retention) -> dict[str, Any]:
    """Retention accuracy of the original tower (WiSE-FT mix 0) and of the classifier as it is now."""
    alpha = classifier.wise_alpha
    classifier.set_wise_alpha(0.0)
    before = retention_accuracy(tower_features(classifier, retention.pixels), retention.head, retention.labels)
    classifier.set_wise_alpha(alpha)
    after = retention_accuracy(tower_features(classifier, retention.pixels), retention.head, retention.labels)
    return {"zero_shot": before, "fine_tuned": after, "images": len(retention.labels),
            "classes": retention.classes, "source": retention.source}


def retention_line(retention: dict[str, Any]) -> str:
    """'zero-shot 0.625 -> fine-tuned 0.550 on 40 images of 5 classes (generated shapes)'."""
    return (f"zero-shot {retention['zero_shot']:.3f} -> fine-tuned {retention['fine_tuned']:.3f} on "
            f"{retention['images']} images of {len(retention['classes'])} classes ({retention['source']})")


def _row(method: str, classifier: CLIPClassifier, pixels: torch.Tensor, labels: list[int],
         retention: Retention, blocks: int) -> dict[str, Any]:
    features = tower_features(classifier, retention.pixels)
    active = len(classifier.gates.active()) if classifier.gates is not None else (
        0 if classifier.lora is None or classifier.wise_alpha == 0 else blocks)
    return {"method": method, "new_task_accuracy": evaluate(classifier, pixels, labels)["accuracy"],
            "retention_accuracy": retention_accuracy(features, retention.head, retention.labels),
            "active_blocks": active, "blocks": blocks,
            "trainable_parameters": classifier.kept_parameters() if classifier.wise_alpha else 0}


def compare_methods(data: LabelledSet, params: Params, retention: LabelledSet | None = None,
                    device: str | None = None, progress: ProgressCallback = ignore_progress) -> list[dict[str, Any]]:
    """Train Selective LoRA, LoRA on all blocks and a linear probe on the same split, and score each (and
    zero-shot, and WiSE-FT mixes of the LoRA run) on the held-out images and on the retention set."""
    from engine.finetune.classify.runs import fit_split

    torch_device = select_device(device)
    train_idx, held_idx = split_held_out(data, params.held_out_fraction, params.seed)
    if not held_idx:
        raise UserInputError("Comparing methods needs held-out images: give each class 2 or more images.")
    prepared = prepare_retention(retention, params.base_preset(), torch_device)
    rows = []
    for number, method in enumerate(COMPARED):
        step = sub_progress(progress, number / len(COMPARED), (number + 1) / len(COMPARED))
        fitted = fit_split(data, train_idx, held_idx, params.replace(method=method, lora_blocks="all"), torch_device,
                           progress=step)
        classifier = fitted.classifier
        blocks = len(classifier.visual.transformer.resblocks)
        if method == "lora":
            for alpha in (0.0, *WISE_ALPHAS):
                classifier.set_wise_alpha(alpha)
                name = "zero-shot" if alpha == 0 else f"WiSE-FT {alpha:g} (lora)"
                rows.append(_row(name, classifier, fitted.pixels, fitted.labels, prepared, blocks))
            classifier.set_wise_alpha(1.0)
        rows.append(_row(method, classifier, fitted.pixels, fitted.labels, prepared, blocks))
    return sorted(rows, key=lambda r: r["method"] != "zero-shot")


COLUMNS = ("method", "new_task_accuracy", "retention_accuracy", "active_blocks", "blocks", "trainable_parameters")
COLOURS = {"zero-shot": (110, 110, 110), "selective-lora": (214, 39, 40), "lora": (31, 119, 180),
           "linear": (44, 160, 44)}
WISE_COLOUR = (148, 103, 189)


def trade_off_plot(rows: Sequence[dict[str, Any]], size: tuple[int, int] = (520, 420)) -> Image.Image:
    """New-task accuracy (x) against retention accuracy (y), one labelled point per method."""
    width, height = size
    left, right, top, bottom = 56, 20, 36, 48
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font, small = label_font(14), label_font(11)

    def point(x: float, y: float) -> tuple[float, float]:
        return left + x * (width - left - right), height - bottom - y * (height - top - bottom)

    draw.rectangle([point(0, 1), point(1, 0)], outline="black")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = point(tick, 0)
        draw.line([(x, y), (x, y + 4)], fill="black")
        draw.text((x - 10, y + 6), f"{tick:g}", fill="black", font=small)
        x, y = point(0, tick)
        draw.line([(x - 4, y), (x, y)], fill="black")
        draw.text((x - 32, y - 6), f"{tick:g}", fill="black", font=small)
    draw.text((left, 10), "New task vs. retention (zero-shot on other classes)", fill="black", font=font)
    draw.text((width // 2 - 60, height - 20), "new-task accuracy", fill="black", font=small)
    draw.text((4, top - 16), "retention", fill="black", font=small)
    placed: list[tuple[float, float, float, float]] = []  # label boxes drawn so far: labels never overlap
    for row in sorted(rows, key=lambda r: r["retention_accuracy"]):
        colour = COLOURS.get(row["method"], WISE_COLOUR)
        x, y = point(row["new_task_accuracy"], row["retention_accuracy"])
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour, outline="black")
        label = fit_text(draw, row["method"], small, 150)
        length = draw.textlength(label, font=small)
        lx = x - length - 10 if x > width - 170 else x + 10
        ly = y - 7
        while any(lx < b[2] and b[0] < lx + length and ly < b[3] and b[1] < ly + 13 for b in placed):
            ly -= 13
        placed.append((lx, ly, lx + length, ly + 13))
        if ly != y - 7:
            draw.line([(x, y), (lx + (length if lx < x else 0), ly + 7)], fill=colour)
        draw.text((lx, ly), label, fill=colour, font=small)
    return image


def write_comparison(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[str]:
    """methods.json, methods.csv (one row per method) and methods.png (the trade-off plot) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "methods.json").write_text(json.dumps(list(rows), indent=1))
    write_records(out_dir / "methods.csv", COLUMNS, rows)
    trade_off_plot(rows).save(out_dir / "methods.png")
    return ["methods.json", "methods.csv", "methods.png"]
