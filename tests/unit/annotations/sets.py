"""Small annotated sets the annotation and completion tests share."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from engine.annotations.dataset import Box, Dataset, ImageRecord


def make_images(folder: Path) -> list[ImageRecord]:
    """A grayscale PNG of odd size and an RGB JPEG, with boxes (some fractional, one touching the border)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (37, 23), 90).save(folder / "gray.png")
    Image.new("RGB", (51, 29), (10, 200, 30)).save(folder / "color.jpg")
    return [
        ImageRecord("gray.png", 37, 23, [Box(1, 2, 10, 5, "bolt"), Box(20.5, 3.25, 16.5, 19.75, "nut")],
                    path=folder / "gray.png", id=7),
        ImageRecord("color.jpg", 51, 29, [Box(0, 0, 51, 29, "nut")], path=folder / "color.jpg", id=9),
    ]


def files_in(*folders: Path) -> list[tuple[str, Path]]:
    return [(str(p.relative_to(folder)), p) for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()]


def boxes_of(dataset: Dataset) -> dict[str, list[tuple]]:
    return {i.file_name: sorted((b.x, b.y, b.width, b.height, b.category) for b in i.boxes) for i in dataset.images}


def example_set(folder: Path) -> Dataset:
    """The two images of `make_images` with their classes and COCO ids."""
    return Dataset(make_images(folder), ["bolt", "nut"], {"bolt": 3, "nut": 5})
