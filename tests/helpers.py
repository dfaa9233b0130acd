"""Small builders shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def noise_images(folder: Path, count: int, size: tuple[int, int] = (240, 240)) -> list[Path]:
    """`count` distinct random PNGs, enough to keep a tiny-preset job busy for a few seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"noise_{index:03d}.png"
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path, compress_level=0)
        paths.append(path)
    return paths


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def moving_square_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: float = 10.0,
                        lossless: bool = False) -> list[np.ndarray]:
    """A short video of a bright square moving over a gray background; returns the frames written."""
    from engine.video import VideoWriter

    width, height = size
    written = []
    with VideoWriter(path, fps, lossless=lossless) as writer:
        for index in range(frames):
            frame = np.full((height, width, 3), 90, np.uint8)
            x = (index * 3) % max(width - 10, 1)
            frame[10:20, x : x + 10] = 250
            writer.write(frame)
            written.append(frame)
    return written


COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def colour_classes(root: Path, per_class: int = 6, size: int = 48, seed: int = 0) -> Path:
    """A folder per colour class of noisy solid-colour PNGs: separable classes for fine-tuning tests."""
    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{index}.png")
    return root
