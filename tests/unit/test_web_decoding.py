"""Pictures the web process decodes itself (the completion tab's drawing canvas, the insertion tab's box preview
and the check of its picture at the click, the box annotator when an event takes it as input) are decoded as jobs
decode them: a file that is no image, or one past FEWSHOT_MAX_IMAGE_PIXELS, gets a message naming the file and the
limit (no server path), and is never decoded."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import FileData
from gradio_image_annotation import image_annotator
from PIL import Image

from tests.hostile_corpus import encoded, png_header_only
from webapp.bounded_pictures import bound_picture_decoding, checked_picture
from webapp.completion_tab import drawing_background
from webapp.insertion_tab import show_box


@pytest.fixture
def pictures(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("FEWSHOT_MAX_IMAGE_PIXELS", "10000")
    folder = tmp_path / "uploads-secret"
    folder.mkdir()
    files = {"text.png": b"not an image at all", "header.png": png_header_only(60_000, 60_000)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    Image.new("RGB", (200, 100), "grey").save(folder / "big.png")  # 20,000 pixels: past the limit set above
    Image.new("RGB", (50, 40), "grey").save(folder / "small.png")
    return {path.name: str(path) for path in folder.iterdir()}


@pytest.mark.parametrize("name, says", [("text.png", "not an image"), ("header.png", "FEWSHOT_MAX_IMAGE_PIXELS"),
                                        ("big.png", "FEWSHOT_MAX_IMAGE_PIXELS")])
def test_the_drawing_canvas_refuses_what_a_job_would_refuse(pictures, name, says):
    with pytest.raises(gr.Error) as refused:
        drawing_background(name, list(pictures.values()), None, [])
    assert name in refused.value.message and says in refused.value.message
    assert "uploads-secret" not in refused.value.message


def test_the_drawing_canvas_shows_an_accepted_image(pictures):
    shown = drawing_background("small.png", list(pictures.values()), None, [])
    assert shown["image"].size == (50, 40)


@pytest.mark.parametrize("name, says", [("big.png", "FEWSHOT_MAX_IMAGE_PIXELS"), ("text.png", "not an image")])
def test_the_box_preview_refuses_what_a_job_would_refuse(pictures, name, says):
    _, message = show_box(pictures[name], "1,1,5,5")
    assert says in message and "uploads-secret" not in message


def test_the_box_preview_draws_on_an_accepted_image(pictures):
    picture, message = show_box(pictures["small.png"], "1,1,5,5")
    assert message == "" and picture.value is not None


@pytest.mark.parametrize("name, says", [("text.png", "not an image"), ("header.png", "FEWSHOT_MAX_IMAGE_PIXELS"),
                                        ("big.png", "FEWSHOT_MAX_IMAGE_PIXELS")])
def test_a_picture_is_refused_before_it_is_decoded(pictures, name, says, monkeypatch):
    """The box annotator decodes any picture a request names, in the web process (a 12000 x 12000 PNG of 450 kB:
    1.1 GB more for 13 s), as did Gradio's image editor; the insertion tab checks its picture at the click. Each
    reads the header first."""
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda image: decoded.append(image))
    bound_picture_decoding()
    with gr.Blocks():
        annotator = image_annotator(image_type="filepath")
    for preprocess in (lambda: checked_picture(pictures[name]),
                       lambda: annotator.preprocess_image(FileData(path=pictures[name], orig_name=name))):
        with pytest.raises(gr.Error) as refused:
            preprocess()
        assert name in refused.value.message and says in refused.value.message
        assert "uploads-secret" not in refused.value.message
    assert decoded == []


def test_an_accepted_picture_is_taken(pictures):
    bound_picture_decoding()
    with gr.Blocks():
        annotator = image_annotator(image_type="filepath")
    checked_picture(pictures["small.png"])
    assert Image.open(annotator.preprocess_image(FileData(path=pictures["small.png"]))).size == (50, 40)
    checking = image_annotator.preprocess_image
    bound_picture_decoding()  # another app built in this process: wrapped once
    assert image_annotator.preprocess_image is checking


@pytest.mark.parametrize("name, save", [("desk.jpg", {}), ("cmyk.jpg", {"mode": "CMYK"}), ("photo.webp", {}),
                                        ("scan.bmp", {}), ("scan.tif", {}), ("mask.webp", {"mode": "RGBA"}),
                                        ("named.jpeg", {"format": "PNG"})])
def test_the_insertion_tab_takes_every_accepted_format(tmp_path, name, save):
    """The picture goes to the job as the user gave it (the job turns it upright and converts it): the check at
    the click refuses none of the accepted formats."""
    mode = save.pop("mode", "RGB")
    Image.new("RGB", (60, 40), "blue").convert(mode).save(tmp_path / name, **save)
    checked_picture(str(tmp_path / name))


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_a_truncated_picture_is_refused_naming_it_and_the_accepted_formats(pictures, name):
    """Its header was read, then Gradio failed decoding it: "image file is truncated", with the server path."""
    folder = Path(pictures["small.png"]).parent
    whole = encoded("PNG" if name.endswith(".png") else "JPEG", size=(100, 90))  # within the limit set above
    (folder / name).write_bytes(whole[: len(whole) * 2 // 3])  # the header whole, the pixels cut
    bound_picture_decoding()
    with gr.Blocks():
        annotator = image_annotator(image_type="filepath")
    for preprocess in (lambda: checked_picture(str(folder / name)),
                       lambda: annotator.preprocess_image(FileData(path=str(folder / name), orig_name=name))):
        with pytest.raises(gr.Error) as refused:
            preprocess()
        said = refused.value.message
        assert said.startswith(f"{name}: the image is corrupt or truncated") and "accepted formats: PNG, JPEG" in said
        assert "uploads-secret" not in said
