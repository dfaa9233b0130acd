"""The two components that decode a picture in the web process, bounded before they do.

Gradio's image editor and the box annotator decode their whole picture in the web process (to save it again) on
every event that takes them as input, whatever file the request names. One 450 kB PNG of 12000 x 12000 pixels,
sent by the API as the insertion tab's picture, took that process from 200 MB to 1.3 GB for 13 s: a few such
requests at once would take the app down for everyone. `bound_picture_decoding` makes both read the picture's
header first (`engine.media.open_image`: an accepted format, at most FEWSHOT_MAX_IMAGE_PIXELS), then decode it whole
as a job does, and refuse it with the message a job gives (a truncated file failed inside Gradio, whose message
named the server path of the upload). The editor is given the picture as the page sends one, an upright PNG (see
`editor_picture`). It wraps the two classes' decoding methods, not subclasses: Gradio serves a component's page code
from beside the module that defines it, so a subclass of the annotator (a custom component) has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import gradio as gr
from gradio.data_classes import FileData
from gradio_image_annotation import image_annotator

from engine.errors import UserInputError
from engine.media import decode_image, open_image, to_rgb

PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})  # what Pillow writes as PNG


@contextmanager
def _refused_on_the_page() -> Iterator[None]:
    """A job's refusal of a picture (its name, the problem, the accepted formats or the limit) as the page's."""
    try:
        yield
    except UserInputError as exc:
        raise gr.Error(str(exc)) from None


def _source(picture: FileData | bytes) -> tuple[str | IO[bytes], str]:
    if isinstance(picture, FileData):
        return picture.path, picture.orig_name or "the picture"
    return BytesIO(picture), "the picture"


def checked_picture(picture: FileData | bytes | None) -> FileData | bytes | None:
    """`picture` once it is known to be an accepted, bounded image that decodes whole; else gr.Error with the job's
    message (name, problem, accepted formats or limit)."""
    if picture is not None:
        with _refused_on_the_page():
            decode_image(*_source(picture)).close()  # its header first: one past the limit is never decoded
    return picture


def editor_picture(picture: FileData | bytes | None) -> FileData | bytes | None:
    """`picture` as the page's image editor sends one: a PNG, upright, checked as `checked_picture` does.

    Gradio's editor converts a picture to RGBA and saves it in its upload's format, which for a JPEG (the tab's own
    sample) fails; it ignores EXIF rotation, which the page applies. A PNG without EXIF is kept as it is, named .png
    for the suffix Gradio saves by; any other picture is given as PNG bytes."""
    if picture is None:
        return None
    with _refused_on_the_page():
        with open_image(*_source(picture)) as header:
            kept = header.format == "PNG" and "exif" not in header.info
        upright = decode_image(*_source(picture))
    if kept:
        upright.close()
        if isinstance(picture, FileData) and picture.orig_name:
            return picture.model_copy(update={"orig_name": f"{Path(picture.orig_name).stem}.png"})
        return picture
    if upright.mode not in PNG_MODES:  # CMYK, 16-bit big-endian, floating point
        upright = to_rgb(upright)
    png = BytesIO()
    upright.save(png, "PNG", compress_level=1)  # decoded again at once: quick rather than small
    return png.getvalue()


def _checking(decode: Callable[..., Any], prepare: Callable[[Any], Any]) -> Callable[..., Any]:
    def checked(self: Any, picture: FileData | bytes | None, *args: Any, **kwargs: Any) -> Any:
        return decode(self, prepare(picture), *args, **kwargs)

    checked.checks_pictures = True  # type: ignore[attr-defined]
    return checked


DECODERS = ((gr.ImageEditor, "convert_and_format_image", editor_picture),
            (image_annotator, "preprocess_image", checked_picture))


def bound_picture_decoding() -> None:
    """Make every image editor and box annotator of this process check a picture before decoding it (once)."""
    for component, method, prepare in DECODERS:
        decode = getattr(component, method)
        if not getattr(decode, "checks_pictures", False):
            setattr(component, method, _checking(decode, prepare))
