"""Pictures the web process decodes itself (the completion tab's drawing canvas, the insertion tab's box preview,
Gradio's image editor and the box annotator when an event takes them as input) are decoded as jobs decode them: a
file that is no image, or one past FEWSHOT_MAX_IMAGE_PIXELS, gets a message naming the file and the limit (no
server path), and is never decoded."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import FileData
from gradio_image_annotation import image_annotator
from PIL import Image

from tests.hostile_corpus import encoded, png_header_only
from webapp.bounded_pictures import bound_picture_decoding
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
    _, message = show_box({"background": pictures[name], "layers": []}, "1,1,5,5")
    assert says in message and "uploads-secret" not in message


def test_the_box_preview_draws_on_an_accepted_image(pictures):
    picture, message = show_box({"background": pictures["small.png"], "layers": []}, "1,1,5,5")
    assert message == "" and picture.value is not None


def editor_data(path: str) -> dict:
    picture = {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}
    return {"background": picture, "layers": [], "composite": picture, "id": None}


@pytest.mark.parametrize("name, says", [("text.png", "not an image"), ("header.png", "FEWSHOT_MAX_IMAGE_PIXELS"),
                                        ("big.png", "FEWSHOT_MAX_IMAGE_PIXELS")])
def test_the_editors_refuse_a_picture_before_gradio_decodes_it(pictures, name, says, monkeypatch):
    """Gradio's image editor and the box annotator decode any picture a request names, in the web process (a
    12000 x 12000 PNG of 450 kB: 1.1 GB more for 13 s); they read its header first now."""
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda image: decoded.append(image))
    bound_picture_decoding()
    with gr.Blocks():
        editor, annotator = gr.ImageEditor(type="filepath", format="png"), image_annotator(image_type="filepath")
    for preprocess in (lambda: editor.preprocess(editor.data_model(**editor_data(pictures[name]))),
                       lambda: annotator.preprocess_image(FileData(path=pictures[name], orig_name=name))):
        with pytest.raises(gr.Error) as refused:
            preprocess()
        assert name in refused.value.message and says in refused.value.message
        assert "uploads-secret" not in refused.value.message
    assert decoded == []


def test_the_editors_still_take_an_accepted_picture(pictures):
    bound_picture_decoding()
    with gr.Blocks():
        editor, annotator = gr.ImageEditor(type="filepath", format="png"), image_annotator(image_type="filepath")
    value = editor.preprocess(editor.data_model(**editor_data(pictures["small.png"])))
    assert Image.open(value["background"]).size == (50, 40)
    assert Image.open(annotator.preprocess_image(FileData(path=pictures["small.png"]))).size == (50, 40)
    checking = image_annotator.preprocess_image
    bound_picture_decoding()  # another app built in this process: wrapped once
    assert image_annotator.preprocess_image is checking


def _photo(folder: Path, name: str, **save: object) -> str:
    """A 60 x 40 picture (left half red) saved as `name` (its suffix names the format)."""
    picture = Image.new("RGB", (60, 40), "blue")
    picture.paste((255, 0, 0), (0, 0, 30, 40))
    mode = save.pop("mode", "RGB")
    (picture.convert(mode) if mode != "RGB" else picture).save(folder / name, **save)
    return str(folder / name)


def _rotated_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise
    return exif


@pytest.mark.parametrize("name, save", [("desk.jpg", {}), ("cmyk.jpg", {"mode": "CMYK"}), ("photo.webp", {}),
                                        ("scan.bmp", {}), ("scan.tif", {}), ("mask.webp", {"mode": "RGBA"}),
                                        ("named.jpeg", {"format": "PNG"}), ("turned.jpg", {"exif": _rotated_exif()}),
                                        ("turned.png", {"exif": _rotated_exif()})])
def test_the_image_editor_takes_every_accepted_format_upright(tmp_path, name, save):
    """Through the API the editor got the file itself (the page sends a PNG): Gradio converted it to RGBA and saved
    it in its own format, which a JPEG cannot hold ("cannot write mode RGBA", with the upload's server path), and
    ignored EXIF rotation, which the page applies."""
    bound_picture_decoding()
    with gr.Blocks():
        editor = gr.ImageEditor(type="filepath", format="png")
    value = editor.preprocess(editor.data_model(**editor_data(_photo(tmp_path, name, **save))))
    picture = Image.open(value["background"]).convert("RGB")
    turned = "turned" in name
    assert picture.size == ((40, 60) if turned else (60, 40))
    red_at = (20, 5) if turned else (5, 20)  # the left half, once turned, is the top
    assert picture.getpixel(red_at)[0] > 200 and picture.getpixel(red_at)[2] < 60
    assert Image.open(value["composite"]).size == picture.size


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_a_truncated_picture_is_refused_naming_it_and_the_accepted_formats(pictures, name):
    """Its header was read, then Gradio failed decoding it: "image file is truncated", with the server path."""
    folder = Path(pictures["small.png"]).parent
    whole = encoded("PNG" if name.endswith(".png") else "JPEG", size=(100, 90))  # within the limit set above
    (folder / name).write_bytes(whole[: len(whole) * 2 // 3])  # the header whole, the pixels cut
    bound_picture_decoding()
    with gr.Blocks():
        editor, annotator = gr.ImageEditor(type="filepath", format="png"), image_annotator(image_type="filepath")
    for preprocess in (lambda: editor.preprocess(editor.data_model(**editor_data(str(folder / name)))),
                       lambda: annotator.preprocess_image(FileData(path=str(folder / name), orig_name=name))):
        with pytest.raises(gr.Error) as refused:
            preprocess()
        said = refused.value.message
        assert said.startswith(f"{name}: the image is corrupt or truncated") and "accepted formats: PNG, JPEG" in said
        assert "uploads-secret" not in said
