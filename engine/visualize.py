"""Rendering of results: heat-map overlays with outlines, lossless grayscale map files, small charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_FONT_FILES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")  # Debian's fonts-dejavu-core; found by Pillow

# Polynomial fit of Google's Turbo colormap (Mikhailov 2019): smooth, perceptually ordered.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)


def turbo(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB (..., 3): 0 dark blue, 0.5 green, 1 dark red."""
    x = np.clip(values, 0.0, 1.0)[..., None]
    powers = np.concatenate([x**k for k in range(6)], axis=-1)
    return (np.clip(powers @ _TURBO.T, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def heatmap_overlay(image: Image.Image, scores: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend the colour-coded scores (absolute scale 0..1, so images compare) over the image."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    heat = turbo(scores).astype(np.float32)
    return Image.fromarray((base * (1.0 - alpha) + heat * alpha + 0.5).astype(np.uint8))


def map_to_png16(scores: np.ndarray) -> Image.Image:
    """A 16-bit grayscale image of scores in [0, 1] (value = score x 65535), for lossless download."""
    return Image.fromarray((np.clip(scores, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16))


def region_outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean (H, W) boundary of the True regions of `mask`, `width` pixels thick, inside the regions."""
    inner = mask.copy()
    for _ in range(max(width, 1)):
        padded = np.pad(inner, 1, mode="edge")
        inner = (inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~inner


def inspection_overlay(image: Image.Image, scores: np.ndarray, pixel_threshold: float | None = None) -> Image.Image:
    """Heat-map overlay with the outline (white) of the regions scoring above `pixel_threshold`."""
    overlay = heatmap_overlay(image, scores)
    if pixel_threshold is None:
        return overlay
    outline = region_outline(scores > pixel_threshold, width=max(1, round(max(scores.shape) / 300)))
    pixels = np.asarray(overlay).copy()
    pixels[outline] = 255
    return Image.fromarray(pixels)


def region_tint(image: Image.Image, mask: np.ndarray, colour: tuple[int, int, int] = (230, 30, 30),
                alpha: float = 0.5) -> Image.Image:
    """The image with the True pixels of `mask` tinted with `colour` and outlined in it: a thresholded region."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    pixels[mask] = pixels[mask] * (1.0 - alpha) + np.array(colour, dtype=np.float32) * alpha
    pixels[region_outline(mask, width=max(1, round(max(mask.shape) / 150)))] = colour
    return Image.fromarray((pixels + 0.5).astype(np.uint8))


@lru_cache(maxsize=64)
def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font `size` pixels high for labels on result images: DejaVu Sans Bold where the system has
    it, else the font bundled with Pillow (scalable with FreeType, Pillow >= 10.1)."""
    for name in LABEL_FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
             width: float) -> str:
    """`text`, shortened with an ellipsis until it is at most `width` pixels wide in `font`."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def fitted_range(values: Sequence[float], bounds: tuple[float, float] = (0.0, 1.0), margin: float = 0.1,
                 min_span: float = 0.04, step: float = 0.01) -> tuple[float, float]:
    """An axis range that shows `values` large: their span plus `margin` of it on each side (at least
    `min_span` in all), widened to multiples of `step` and kept within `bounds`."""
    low, high = min(values), max(values)
    pad = max((high - low) * margin, (min_span - (high - low)) / 2)
    start, end = math.floor((low - pad) / step) * step, math.ceil((high + pad) / step) * step
    return round(max(bounds[0], start), 10), round(min(bounds[1], end), 10)


Series = tuple[Sequence[float], Sequence[float], tuple[int, int, int]]  # xs, ys, RGB colour


def line_chart(series: Sequence[Series], x_range: tuple[float, float], y_range: tuple[float, float],
               title: str, x_label: str, y_label: str, size: tuple[int, int] = (360, 360),
               legend: Sequence[tuple[str, tuple[int, int, int]]] = ()) -> Image.Image:
    """A small line chart drawn with PIL (no plotting library needed): frame, lines, title, axis names, and a
    legend (name, colour) in the lower right corner."""
    width, height = size
    margin = 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    (x0, x1), (y0, y1) = x_range, y_range

    def point(x: float, y: float) -> tuple[float, float]:
        fx = (x - x0) / ((x1 - x0) or 1.0)
        fy = (y - y0) / ((y1 - y0) or 1.0)
        return margin + fx * (width - 2 * margin), height - margin - fy * (height - 2 * margin)

    draw.rectangle([point(x0, y1), point(x1, y0)], outline="black")
    for xs, ys, colour in series:
        points = [point(x, y) for x, y in zip(xs, ys, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            px, py = points[0]
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
    draw.text((margin, 10), title, fill="black")
    draw.text((width // 2 - 4 * len(x_label) // 2, height - margin + 12), x_label, fill="black")
    draw.text((4, margin - 14), y_label, fill="black")
    draw.text((margin - 4 - 6 * len(f"{y1:g}"), margin - 5), f"{y1:g}", fill="black")
    draw.text((margin - 4 - 6 * len(f"{y0:g}"), height - margin - 5), f"{y0:g}", fill="black")
    draw.text((width - margin - 6 * len(f"{x1:g}"), height - margin + 2), f"{x1:g}", fill="black")
    for row, (name, colour) in enumerate(reversed(legend)):
        top = height - margin - 16 - 14 * row
        draw.line([(width - margin - 150, top + 6), (width - margin - 132, top + 6)], fill=colour, width=3)
        draw.text((width - margin - 128, top), name, fill="black")
    return image


def draw_boxes(image: Image.Image, boxes: Sequence, classes: Sequence[str]) -> Image.Image:
    """The image with each box (x, y, width, height, category, score) outlined and labelled, one colour per class."""
    picture = image.convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(picture.size) / 300))
    colours = turbo(np.linspace(0.1, 0.9, max(len(classes), 1)))
    for box in boxes:
        colour = tuple(int(c) for c in colours[classes.index(box.category)])
        draw.rectangle([box.x, box.y, box.x + box.width, box.y + box.height], outline=colour, width=width)
        label = box.category if box.score is None else f"{box.category} {box.score:.2f}"
        draw.text((box.x + width + 1, box.y + width), label, fill=colour)
    return picture
