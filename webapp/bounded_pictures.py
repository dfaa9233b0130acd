"""The component that decodes a picture in the web process, bounded before it does.

The box annotator decodes its whole picture in the web process (to save it again) on every event that takes it as
input, whatever file the request names. One 450 kB PNG of 12000 x 12000 pixels, sent by the API as the insertion
tab's picture (then Gradio's image editor, which did the same), took that process from 200 MB to 1.3 GB for 13 s: a
few such requests at once would take the app down for everyone. `bound_picture_decoding` makes it read the picture's
header first (`engine.media.open_image`: an accepted format, at most FEWSHOT_MAX_IMAGE_PIXELS), then decode it whole
as a job does, and refuse it with the message a job gives (a truncated file failed inside Gradio, whose message
named the server path of the upload). It wraps the class's decoding method, not a subclass: Gradio serves a
component's page code from beside the module that defines it, so a subclass of the annotator (a custom component)
has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import gradio as gr
from gradio.data_classes import FileData
from gradio_image_annotation import image_annotator

from engine.errors import UserInputError
from engine.media import decode_image


@contextmanager
def _refused_on_the_page() -> Iterator[None]:
    """A job's refusal of a picture (its name, the problem, the accepted formats or the limit) as the page's."""
    try:
        yield
    except UserInputError as exc:
        raise gr.Error(str(exc)) from None


def _source(picture: FileData | str | bytes) -> tuple[str | IO[bytes], str]:
    if isinstance(picture, FileData):
        return picture.path, picture.orig_name or "the picture"
    if isinstance(picture, str):
        return picture, Path(picture).name
    return BytesIO(picture), "the picture"


def checked_picture(picture: FileData | str | bytes | None) -> FileData | str | bytes | None:
    """`picture` once it is known to be an accepted, bounded image that decodes whole; else gr.Error with the job's
    message (name, problem, accepted formats or limit)."""
    if picture is not None:
        with _refused_on_the_page():
            decode_image(*_source(picture)).close()  # its header first: one past the limit is never decoded
    return picture


def bound_picture_decoding() -> None:
    """Make every box annotator of this process check a picture before decoding it (once)."""
    decode = image_annotator.preprocess_image
    if getattr(decode, "checks_pictures", False):
        return

    def checked(self: image_annotator, picture: FileData | bytes | None, *args: Any, **kwargs: Any) -> Any:
        return decode(self, checked_picture(picture), *args, **kwargs)

    checked.checks_pictures = True  # type: ignore[attr-defined]
    image_annotator.preprocess_image = checked  # type: ignore[method-assign]
