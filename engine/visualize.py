"""Rendering of score maps: colour heat-map overlays and lossless grayscale map files."""

from __future__ import annotations

import numpy as np
from PIL import Image

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
