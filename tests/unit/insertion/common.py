"""What the insertion tests share: parameters of the tiny preset and a noise picture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.insertion.insert import Params

STEPS = 2
SIZE = (96, 72)


def settings(**overrides) -> Params:
    return Params(**{"prompt": "a red ball", "steps": STEPS, "seed": 3, "preset": "insertion-tiny", **overrides})


def noise_image(width: int = 96, height: int = 72, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))
