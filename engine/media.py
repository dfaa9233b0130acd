"""Decoding of user images: only the accepted formats, bounded pixel counts, clear errors.

Every upload goes through `load_image`, so the limits hold for the UI, the API and the CLI.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from engine.errors import UserInputError, reason
from engine.filetypes import IMAGE_SUFFIXES

ACCEPTED_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Files with an accepted image suffix in a folder (or below it), sorted; none if it is missing."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def max_image_pixels() -> int:
    """Largest accepted width x height; FEWSHOT_MAX_IMAGE_PIXELS overrides the default."""
    return int(os.environ.get("FEWSHOT_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))


def _too_large(limit: int) -> str:
    return f"too large: at most {limit:,} pixels are accepted (FEWSHOT_MAX_IMAGE_PIXELS sets the limit)."


def _accepted() -> str:
    return f"accepted formats: {', '.join(ACCEPTED_IMAGE_FORMATS)}"


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Pillow's failures while reading the image `name` as UserInputErrors naming it."""
    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own guard, for decoders that expand lazily
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UserInputError:
        raise
    except FileNotFoundError:
        raise UserInputError(f"{name}: file not found.") from None
    except UnidentifiedImageError:
        raise UserInputError(f"{name}: not an image in an accepted format ({_accepted()}).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserInputError(f"{name}: the image is {_too_large(limit)}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{name}: the image is corrupt or truncated ({reason(exc)}); {_accepted()}.") from None


def open_image(source: str | Path | IO[bytes], name: str) -> Image.Image:
    """Open an image by its header only: its format accepted and its size within the limit, not yet decoded.
    Whatever decodes an image a user sent checks it here first (a small file can unpack to gigabytes). Raises
    UserInputError naming the file."""
    limit = max_image_pixels()
    with _reading(name):
        image = Image.open(source, formats=ACCEPTED_IMAGE_FORMATS)
        width, height = image.size
        if width * height > limit:
            image.close()
            raise UserInputError(f"{name}: {width} x {height} pixels is {_too_large(limit)}")
    return image


def upright_size(path: str | Path, name: str) -> tuple[int, int]:
    """(width, height) of an image as `load_image` gives it (EXIF rotation applied), read from its header only: cheap
    enough to check a region against before a job is stored. Raises UserInputError naming the file, as `open_image`."""
    with open_image(path, name) as image:
        width, height = image.size
        turned = quarter_turned(image)
    return (height, width) if turned else (width, height)


def quarter_turned(image: Image.Image) -> bool:
    """Whether the image's EXIF orientation turns it by a quarter to show it: its width and height swap."""
    return image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)


def later_frames_note(image: Image.Image, name: str) -> str | None:
    """What a multi-page TIFF or an animated PNG / WebP loses when only its first frame is decoded, or None:
    the user would otherwise think every page was inspected."""
    count = getattr(image, "n_frames", 1)
    if count <= 1:
        return None
    what = "pages" if image.format == "TIFF" else "frames"
    return (f"{name}: a {image.format} of {count} {what}; only the first was used. Save each of the other "
            f"{what} as an image of its own to use it.")


def load_image(path: str | Path, display_name: str | None = None, notes: list[str] | None = None) -> Image.Image:
    """Decode an image file to 8-bit RGB at its own size and orientation.

    Grayscale, 16-bit, palette, RGBA and CMYK inputs are converted; EXIF rotation is applied. A file of several
    pages or frames gives its first, and a note saying so joins `notes` when given.
    Raises UserInputError naming the file for anything that is not a sound, accepted image.
    """
    return to_rgb(decode_image(path, display_name or Path(path).name, notes))


def decode_image(source: str | Path | IO[bytes], name: str, notes: list[str] | None = None) -> Image.Image:
    """Decode an image whole and upright, in its own mode: `load_image` short of RGB, for what keeps its alpha (a
    mask painted in the web page's editor). Raises UserInputError naming the file, as `load_image` does."""
    image = open_image(source, name)
    try:
        with _reading(name):
            note = later_frames_note(image, name) if notes is not None else None  # counting frames reads them
            image.load()
    except UserInputError:
        image.close()  # a truncated file: not held open until collected
        raise
    if note:
        notes.append(note)
    return ImageOps.exif_transpose(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode; 16-bit and float data are scaled, not clipped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        image = Image.fromarray(np.clip(values / scale * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min(initial=0)), float(values.max(initial=0))
        spread = high - low if high > low else 1.0
        image = Image.fromarray(((values - low) / spread * 255.0 + 0.5).astype(np.uint8))
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def decoded(files: Iterable[tuple[str, Path]], skipped: list[dict[str, str]],
            notes: list[str] | None = None) -> Iterator[tuple[str, Image.Image]]:
    """(name, image) of each file that decodes, one at a time; the others go to `skipped` as {file, error}, and
    what was left of a file used (the later pages of a TIFF) to `notes` when given."""
    for name, path in files:
        try:
            image = load_image(path, display_name=name, notes=notes)
        except UserInputError as exc:
            skipped.append({"file": name, "error": str(exc)})
            continue
        yield name, image


def load_images(
    files: Sequence[tuple[str, Path]], what: str = "images", skipped: Sequence[dict[str, str]] = (),
    notes: list[str] | None = None,
) -> tuple[list[str], list[Image.Image], list[dict[str, str]]]:
    """Decode a batch, keeping the good images: (names, images, skipped [{file, error}]).

    `skipped`: what was refused before decoding (a zip `expand_archives` left out); it heads the skipped list
    and its reasons join the error, so a refused zip says why rather than "no images given". Notes on images
    used only in part go to `notes` (see `decoded`). Raises UserInputError only when none of the `what` could
    be decoded.
    """
    skipped = list(skipped)
    pairs = list(decoded(files, skipped, notes))
    if not pairs:
        reasons = " ".join(item["error"] for item in skipped)
        raise UserInputError(f"None of the {what} could be used. {reasons}".strip() if skipped else f"No {what} given.")
    return [name for name, _ in pairs], [image for _, image in pairs], skipped
