"""Where to insert: masks from drawn layers or boxes, crops with context, and pasting back.

A region is a boolean mask at the image's size. The model sees a crop around it (the region
plus a margin of context), resized to the model's resolution; the generated crop is resized
back and blended in with a feather that lies inside the mask only, so every pixel outside the
mask keeps its original value exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from engine.errors import UserInputError
from engine.media import load_image

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive


def parse_box(values: Sequence[float] | str, size: tuple[int, int] | None, what: str = "box") -> Box:
    """A box from four numbers (x0, y0, x1, y1) or 'x0,y0,x1,y1', clipped to the image and checked. Without the
    image's `size` (a video's frame, before a job decodes it) only what no image has is refused: a box of no width
    or height, or one left of or above every image."""
    width, height = size or (math.inf, math.inf)
    image = f"the {width} x {height} image" if size else "the image"
    accepted = f"The {what} needs four numbers x0,y0,x1,y1: finite, in pixels, inside {image}"
    if isinstance(values, str):
        values = [v for v in values.replace(";", ",").replace(" ", ",").split(",") if v]
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{accepted}, not {str(values)[:80]!r}.") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise UserInputError(f"{accepted}, not {x0:g},{y0:g},{x1:g},{y1:g}.")
    box = (max(0, round(min(x0, x1))), max(0, round(min(y0, y1))),
           min(width, round(max(x0, x1))), min(height, round(max(y0, y1))))
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        raise UserInputError(f"The {what} {tuple(values)} covers no pixel of {image}.")
    return box


def unmarked_region(what: str) -> UserInputError:
    """What a run with neither a drawn or uploaded mask nor a box is told: where to mark and how."""
    return UserInputError(f"Mark the region in {what}: draw over it, upload a mask, or give a box x0,y0,x1,y1.")


def load_image_with_alpha(path: Path, name: str) -> Image.Image:
    """A mask file through the same checks as any image, keeping a drawn layer's transparency."""
    load_image(path, display_name=name)  # format, size and integrity checks
    with Image.open(path) as image:
        return image.copy()


def mask_from_box(box: Box, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    return mask


def mask_from_image(layer: Image.Image, size: tuple[int, int], name: str = "mask") -> np.ndarray:
    """The marked pixels of a mask file or a drawn layer.

    A layer with transparency (what an image editor's brush paints) marks its opaque pixels;
    an opaque image (white on black) marks its light pixels.
    """
    if layer.size != size:
        raise UserInputError(f"{name}: the mask is {layer.width} x {layer.height} pixels but the image is "
                             f"{size[0]} x {size[1]}; draw or export the mask at the image's size.")
    if "A" in layer.getbands() or "transparency" in layer.info:
        alpha = np.asarray(layer.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha >= 128
    return np.asarray(layer.convert("L")) >= 128


def check_mask(mask: np.ndarray, what: str = "The mask") -> None:
    """A mask must mark something, and leave something to blend with."""
    if not mask.any():
        raise UserInputError(f"{what} is empty: draw over the place for the object, or give a box.")
    if mask.all():
        raise UserInputError(f"{what} covers the whole frame: leave part of the image unmasked, "
                             "since the object is blended into its surroundings.")


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask widened by `pixels` in every direction (replace mode: cover the old object's outline)."""
    if pixels <= 0:
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * pixels + 1))
    return np.asarray(image) >= 128


def bounding_box(mask: np.ndarray) -> Box:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def context_box(region: Box, size: tuple[int, int], context: float = 0.25, min_side: int = 32) -> Box:
    """A square around the region with `context` x its longer side of margin, shifted (and, at the
    image's edges, clipped) to stay inside the image."""
    width, height = size
    long_side = max(region[2] - region[0], region[3] - region[1])
    side = max(min_side, math.ceil(long_side * (1 + 2 * context)))
    crop_w, crop_h = min(side, width), min(side, height)
    cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    x0 = int(min(max(round(cx - crop_w / 2), 0), width - crop_w))
    y0 = int(min(max(round(cy - crop_h / 2), 0), height - crop_h))
    return x0, y0, x0 + crop_w, y0 + crop_h


def model_size(crop: Box, resolution: int, multiple: int) -> tuple[int, int]:
    """(width, height) for the model: the crop's aspect, longer side = `resolution`, both multiples of `multiple`."""
    crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
    scale = resolution / max(crop_w, crop_h)
    return (max(multiple, round(crop_w * scale / multiple) * multiple),
            max(multiple, round(crop_h * scale / multiple) * multiple))


@dataclass
class Crop:
    """One region prepared for the model: its crop box in the image and model-sized inputs."""

    box: Box
    image: Image.Image  # RGB at model size
    mask: Image.Image  # L at model size, 255 = inpaint
    control: np.ndarray  # (H, W, 3) float32: the inpaint ControlNet's input, masked pixels = -1

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def prepare_crop(image: Image.Image, mask: np.ndarray, box: Box, size: tuple[int, int]) -> Crop:
    crop_image = image.crop(box).resize(size, Image.BICUBIC)
    crop_mask = Image.fromarray(mask[box[1]:box[3], box[0]:box[2]].astype(np.uint8) * 255).resize(size, Image.BILINEAR)
    crop_mask = crop_mask.point(lambda v: 255 if v >= 128 else 0)
    control = np.asarray(crop_image, dtype=np.float32) / 255.0
    control[np.asarray(crop_mask) >= 128] = -1.0
    return Crop(box, crop_image, crop_mask, control)


def feather_alpha(mask: np.ndarray, radius: int) -> np.ndarray:
    """Blend weights in [0, 1]: 0 outside the mask, rising to 1 within `radius` pixels inside its edge."""
    if mask.any():
        x0, y0, x1, y1 = bounding_box(mask)
        radius = min(radius, min(x1 - x0, y1 - y0) // 3)  # a thin region keeps a solid core
    if radius < 1:
        return mask.astype(np.float32)
    inner = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * (radius // 2) + 1))
    soft = np.asarray(inner.filter(ImageFilter.GaussianBlur(radius / 2)), dtype=np.float32) / 255.0
    return np.where(mask, soft, np.float32(0))


def paste(original: Image.Image, generated: Image.Image, box: Box, mask: np.ndarray, feather: int = 6) -> Image.Image:
    """Blend the generated crop (any size; resized to the box) into a copy of `original` inside `mask` only."""
    result = np.array(original.convert("RGB"))
    x0, y0, x1, y1 = box
    region_mask = mask[y0:y1, x0:x1]
    alpha = feather_alpha(region_mask, feather)[..., None]
    source = result[y0:y1, x0:x1].astype(np.float32)
    fresh = np.asarray(generated.convert("RGB").resize((x1 - x0, y1 - y0), Image.LANCZOS), dtype=np.float32)
    blended = np.clip(np.rint(source * (1 - alpha) + fresh * alpha), 0, 255).astype(np.uint8)
    result[y0:y1, x0:x1] = np.where(region_mask[..., None], blended, result[y0:y1, x0:x1])
    return Image.fromarray(result)


def interpolate_boxes(keyframes: Sequence[tuple[int, Box]], index: int) -> Box:
    """The box at frame `index`, linear between the nearest keyframes, held before the first and after the last."""
    ordered = sorted(keyframes)
    if index <= ordered[0][0]:
        return ordered[0][1]
    for (frame_a, box_a), (frame_b, box_b) in pairwise(ordered):
        if frame_a <= index <= frame_b:
            t = (index - frame_a) / max(frame_b - frame_a, 1)
            return tuple(round(a + (b - a) * t) for a, b in zip(box_a, box_b, strict=True))  # type: ignore[return-value]
    return ordered[-1][1]


def parse_keyframes(value: str | Sequence, size: tuple[int, int] | None) -> list[tuple[int, Box]]:
    """Keyframe boxes from [{"frame": 0, "box": [x0, y0, x1, y1]}, ...] or lines of 'frame: x0,y0,x1,y1' (without
    `size`, checked as `parse_box` checks a box without it)."""
    if isinstance(value, str):
        items = []
        for line in (raw.strip() for raw in value.splitlines()):
            if not line:
                continue
            frame, sep, box = line.partition(":")
            if not sep:
                raise UserInputError(f"Keyframe line {line!r}: write 'frame: x0,y0,x1,y1', e.g. '0: 10,20,110,140'.")
            items.append({"frame": frame, "box": box})
    else:
        items = list(value or [])
    keyframes = []
    for item in items:
        try:
            frame = int(str(item["frame"]).strip())
        except (KeyError, TypeError, ValueError):
            raise UserInputError(f"Keyframe {item!r}: the frame must be a whole number.") from None
        if frame < 0:
            raise UserInputError(f"Keyframe {item!r}: frames count from 0.")
        keyframes.append((frame, parse_box(item.get("box", ""), size, what=f"box of keyframe {frame}")))
    if not keyframes:
        raise UserInputError("Interpolated boxes need at least one keyframe: 'frame: x0,y0,x1,y1' per line.")
    return keyframes
