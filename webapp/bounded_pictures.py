"""The two components that decode a picture in the web process, bounded before they do.

Gradio's image editor and the box annotator decode their whole picture in the web process (to save it again) on
every event that takes them as input, whatever file the request names. One 450 kB PNG of 12000 x 12000 pixels,
sent by the API as the insertion tab's picture, took that process from 200 MB to 1.3 GB for 13 s: a few such
requests at once would take the app down for everyone. `bound_picture_decoding` makes both read the picture's
header first (`engine.media.open_image`: an accepted format, at most FEWSHOT_MAX_IMAGE_PIXELS) and refuse it with
the message a job gives. It wraps the two classes' decoding methods, not subclasses: Gradio serves a component's
page code from beside the module that defines it, so a subclass of the annotator (a custom component) has none.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio_image_annotation import image_annotator

from engine.errors import UserInputError
from engine.media import open_image

DECODERS = ((gr.ImageEditor, "convert_and_format_image"), (image_annotator, "preprocess_image"))


def check_picture(picture: FileData | bytes | None) -> None:
    """Raise gr.Error (the job's message: name, size, limit) unless `picture` is an accepted, bounded image."""
    if picture is None:
        return
    try:
        if isinstance(picture, FileData):
            source, name = picture.path, picture.orig_name or "the picture"
        else:
            source, name = BytesIO(picture), "the picture"
        open_image(source, name).close()  # the header was enough: the file is not held open
    except UserInputError as exc:
        raise gr.Error(str(exc)) from None


def _checking(decode: Callable[..., Any]) -> Callable[..., Any]:
    def checked(self: Any, picture: FileData | bytes | None, *args: Any, **kwargs: Any) -> Any:
        check_picture(picture)
        return decode(self, picture, *args, **kwargs)

    checked.checks_pictures = True  # type: ignore[attr-defined]
    return checked


def bound_picture_decoding() -> None:
    """Make every image editor and box annotator of this process check a picture before decoding it (once)."""
    for component, method in DECODERS:
        decode = getattr(component, method)
        if not getattr(decode, "checks_pictures", False):
            setattr(component, method, _checking(decode))
