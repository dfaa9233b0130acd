"""Image decoding: accepted formats only, bounded size, clear messages, any channel layout."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.media import load_image, load_images, upright_size


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A small, valid-looking PNG that claims huge dimensions (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width // 8)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UserInputError, match=r"bomb.png: .*too large: at most 64,000,000 pixels are accepted"):
        load_image(bomb)


def test_truncated_image_says_corrupt_and_lists_formats(tmp_path, metal_plate_images):
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(metal_plate_images[0].read_bytes()[:4000])
    with pytest.raises(UserInputError, match=r"cut.png: the image is corrupt or truncated.*PNG, JPEG"):
        load_image(truncated)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.effect_noise((300, 200), 40).convert("RGB").save(path, quality=90)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(UserInputError, match="corrupt or truncated"):
        load_image(path)


def test_a_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, not an image")
    with pytest.raises(UserInputError, match=r"notes.png: not an image in an accepted format \(accepted formats"):
        load_image(path)


def test_unsupported_format_is_refused(tmp_path):
    path = tmp_path / "anim.gif"
    Image.new("RGB", (10, 10)).save(path)
    with pytest.raises(UserInputError, match="accepted formats: PNG, JPEG, WEBP, BMP, TIFF"):
        load_image(path)


def test_grayscale_16bit_is_scaled_to_8bit_rgb(tmp_path):
    values = np.array([[0, 65535], [32768, 4096]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (2, 2)
    assert np.asarray(image)[..., 0].tolist() == [[0, 255], [128, 16]]


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1"])
def test_every_channel_layout_becomes_rgb_at_its_size(tmp_path, mode):
    path = tmp_path / f"img-{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (37, 21)).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (37, 21)


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.new("RGB", (40, 10)).save(path, exif=exif)
    assert load_image(path).size == (10, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_size_read_from_the_header_is_the_decoded_images(tmp_path, orientation):
    """What a submit checks a box against, without decoding: the size the job's image has."""
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 10)).save(path, exif=exif)
    assert upright_size(path, "turned.jpg") == load_image(path).size


def test_a_batch_keeps_good_images_and_lists_the_bad_ones(tmp_path, metal_plate_images):
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    names, images, skipped = load_images([("good.png", metal_plate_images[0]), ("bad.png", bad)])
    assert names == ["good.png"] and len(images) == 1
    assert skipped[0]["file"] == "bad.png" and "not an image" in skipped[0]["error"]
    with pytest.raises(UserInputError, match=r"bad\.png"):
        load_images([("bad.png", bad)])


def test_large_but_not_huge_images_get_the_same_limit_message(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_IMAGE_PIXELS", "1000")
    path = tmp_path / "big.png"
    Image.new("L", (40, 30)).save(path)
    with pytest.raises(UserInputError, match=r"big.png: .*too large: at most 1,000 pixels are accepted"):
        load_image(path)


@pytest.mark.parametrize("suffix, kind, what", [(".tiff", "TIFF", "pages"), (".webp", "WEBP", "frames"),
                                                (".png", "PNG", "frames")])
def test_a_file_of_several_frames_gives_its_first_and_says_so(tmp_path, suffix, kind, what):
    frames = [Image.new("RGB", (8, 6), colour) for colour in ("red", "green", "blue")]
    path = tmp_path / f"multi{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    Image.new("RGB", (8, 6)).save(tmp_path / f"one{suffix}")
    notes: list[str] = []
    names, images, skipped = load_images([("multi" + suffix, path), ("one" + suffix, tmp_path / f"one{suffix}")],
                                         notes=notes)
    assert names == [f"multi{suffix}", f"one{suffix}"] and skipped == []
    assert images[0].getpixel((0, 0))[0] > 250  # the first frame, red
    assert notes == [f"multi{suffix}: a {kind} of 3 {what}; only the first was used. Save each of the other {what} "
                     "as an image of its own to use it."]


def test_reasons_given_before_decoding_join_the_batch_refusal(tmp_path):
    refused = [{"file": "bomb.zip", "error": "bomb.zip: 9,000 bytes uncompressed; at most 1,000 are accepted."}]
    with pytest.raises(UserInputError, match=r"None of the references could be used\. bomb\.zip: 9,000 bytes"):
        load_images([], what="references", skipped=refused)
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    names, _, skipped = load_images([("ok.png", tmp_path / "ok.png")], skipped=refused)
    assert names == ["ok.png"] and skipped == refused
