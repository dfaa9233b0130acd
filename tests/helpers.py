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


def several_pages(path: Path, first: Image.Image | str = "red") -> Path:
    """A TIFF of three pages, the first `first` (an image, or a colour for a 48 x 48 one): read by its first page."""
    page = first if isinstance(first, Image.Image) else Image.new("RGB", (48, 48), first)
    page.save(path, save_all=True, append_images=[Image.new("RGB", page.size, c) for c in ("white", "black")])
    return path


FIRST_PAGE_NOTE = "a TIFF of 3 pages; only the first was used."  # the note's start after the file name


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


SHAPES = {"square": (220, 40, 40), "circle": (40, 60, 220)}


def shape_detection_set(root: Path, count: int = 16, size: int = 64, seed: int = 0) -> Path:
    """`count` PNGs of one or two red squares and blue circles on grey, with a COCO annotations.json:
    two classes a detector can tell apart by colour and shape, for fine-tuning tests."""
    import json

    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    names = list(SHAPES)
    coco: dict = {"images": [], "annotations": [],
                  "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
    (root / "images").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        picture = Image.new("RGB", (size, size), (128, 128, 128))
        draw = ImageDraw.Draw(picture)
        boxes: list[tuple[int, int, int]] = []
        for _ in range(int(rng.integers(1, 3))):
            for _attempt in range(50):  # a place that overlaps no other shape
                side = int(rng.integers(size // 4, size // 2.2))
                x, y = (int(v) for v in rng.integers(0, size - side, 2))
                if all(x + side <= bx or bx + bs <= x or y + side <= by or by + bs <= y for bx, by, bs in boxes):
                    break
            boxes.append((x, y, side))
            kind = int(rng.integers(0, 2))
            corners = [x, y, x + side - 1, y + side - 1]
            (draw.rectangle if kind == 0 else draw.ellipse)(corners, fill=SHAPES[names[kind]])
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index + 1,
                                        "category_id": kind + 1, "bbox": [x, y, side, side], "area": side * side,
                                        "iscrowd": 0})
        picture.save(root / "images" / f"shapes_{index:03d}.png")
        coco["images"].append({"id": index + 1, "file_name": f"images/shapes_{index:03d}.png", "width": size,
                               "height": size})
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def zip_tree(root: Path, archive: Path, prefix: str = "", suffixes: tuple[str, ...] | None = None) -> Path:
    """A zip of the files below `root` (only those ending in `suffixes`, if given), named relative to it,
    under the folder `prefix` if one is given."""
    import zipfile

    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p != archive):
            if suffixes is None or path.suffix in suffixes:
                bundle.write(path, f"{prefix}/{path.relative_to(root).as_posix()}".lstrip("/"))
    return archive


def fake_model(folder: Path, **extra) -> Path:
    """A saved-classifier folder that `read_meta` accepts, for tests of listing, sharing and deleting models
    (its weights are placeholder bytes: it cannot predict)."""
    import json

    folder.mkdir(parents=True)
    meta = {"task": "classify", "classes": ["ok", "scratch"], "base_preset": "finetune-clip-tiny",
            "logit_scale": 100.0, "format_version": 1, **extra}
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / "weights.safetensors").write_bytes(b"\0" * 16)
    return folder


def mvtec_subset(root: Path, dest: Path, per_folder: int) -> Path:
    """The first `per_folder` images of each folder of an MVTec-layout set, with their masks, copied to `dest`: the
    same layout, defect types and pictures for tests of what runs on a set, not of the scores it gets (the
    magnetic-tile scores are checked on the whole set in tests/unit/anomaly/test_golden.py)."""
    import shutil

    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        (dest / folder.relative_to(root)).mkdir(parents=True)
        for path in sorted(folder.glob("*.png"))[:per_folder]:  # masks sort like their images: 000_mask.png, ...
            shutil.copyfile(path, dest / path.relative_to(root))
    return dest


def kolektor_zip(shared_data: Path, folder: Path, per_folder: int = 3) -> Path:
    """A zip of the shared KolektorSDD set's first pictures (and masks) under kolektorsdd/, as a user uploads one."""
    root = mvtec_subset(shared_data / "anomaly" / "kolektorsdd", folder / "kolektorsdd", per_folder)
    return zip_tree(root, folder / "kolektor.zip", prefix="kolektorsdd")


def with_a_scan(shapes_root: Path) -> Path:
    """A `shape_detection_set` whose first image is the first page of a three-page TIFF (images/shapes_000.tiff)."""
    import json

    png = shapes_root / "images" / "shapes_000.png"
    with Image.open(png) as first:
        several_pages(png.with_suffix(".tiff"), first.convert("RGB"))
    png.unlink()
    coco = json.loads((shapes_root / "annotations.json").read_text())
    coco["images"][0]["file_name"] = "images/shapes_000.tiff"
    (shapes_root / "annotations.json").write_text(json.dumps(coco))
    return shapes_root
