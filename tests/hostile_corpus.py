"""A corpus of hostile uploads, made on the fly: broken and lying images, bombs, polyglots, malicious
zips, damaged videos and malformed annotations. Every tool must answer each with a clear message.

Zip-slip entries aim at `escape_targets` (unique names outside any job folder), so a test can check
that nothing was written there.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Corpus:
    images: list[Path] = field(default_factory=list)
    archives: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    annotations: list[Path] = field(default_factory=list)
    # (the file to be named, the annotation files uploaded with part.png): sets that ask for unbounded work
    annotation_sets: list[tuple[str, list[Path]]] = field(default_factory=list)
    escape_targets: list[Path] = field(default_factory=list)


def encoded(image_format: str, size: tuple[int, int] = (96, 72), seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions and holds almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        png_chunk(b"IEND", b"")


def png_bomb(side: int = 12_000) -> bytes:
    """A real, complete PNG of side x side black pixels: a few hundred kB that decode to side² pixels."""
    row = b"\0" + b"\0" * (side // 8)  # filter byte + one bit per pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def zip_bytes(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as bundle:
        for name, data in entries.items():
            bundle.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buffer.getvalue()


def video_bytes(scratch: Path) -> bytes:
    from tests.helpers import moving_square_video

    moving_square_video(scratch, frames=8, size=(64, 48))
    data = scratch.read_bytes()
    scratch.unlink()
    return data


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                             for i in range(1, 10))
                  + b"]><annotation><filename>part.png</filename><object><name>&lol9;</name></object></annotation>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b"<annotation><filename>part.png</filename><object><name>&x;</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
       b"<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")


ALIAS_YAML = "\n".join(  # 383 bytes that expand to 10^9 'lol's (the issue's was 353)
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 10)}]" for n, p in zip("bcdefghi", "abcdefgh", strict=True)]
    + ["names: [*i]"]).encode()


def build(folder: Path) -> Corpus:
    """Write the corpus into `folder` (a fresh directory)."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Corpus()
    token = uuid.uuid4().hex[:12]
    corpus.escape_targets = [folder.parent / f"escaped-{token}.png", Path(f"/tmp/escaped-abs-{token}.png")]
    png, jpeg, webp, tiff = (encoded(kind) for kind in ("PNG", "JPEG", "WEBP", "TIFF"))

    def write(name: str, data: bytes, into: list[Path]) -> None:
        (folder / name).write_bytes(data)
        into.append(folder / name)

    damaged = bytearray(png)
    damaged[60:80] = b"\xff" * 20  # inside IDAT: CRC and deflate stream broken
    for name, data in {
        "truncated.png": png[: len(png) // 2], "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.webp": webp[: len(webp) // 2], "truncated.tif": tiff[: len(tiff) // 3],
        "damaged.png": bytes(damaged), "empty.png": b"",
        "noise.jpg": np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "huge_header.png": png_header_only(200_000, 200_000), "bomb.png": png_bomb(),
        "zip_named.png": zip_bytes({"a.png": png}), "script.jpg": b"<html><script>alert(1)</script></html>",
        "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "animation.webp.gif": _gif(), "gif_named.png": _gif(),
    }.items():
        write(name, data, corpus.images)

    for name, data in {
        "zip_slip.zip": zip_bytes({f"../{corpus.escape_targets[0].name}": png,
                                   str(corpus.escape_targets[1]): png}),
        "zip_bomb.zip": zip_bytes({"good/a.png": png, "bomb/zeros.png": b"\0" * (64 * 2**20)}),
        "nested.zip": zip_bytes({"inner.zip": zip_bytes({"inner.zip": zip_bytes({"a.png": png})})}),
        "not_a_zip.zip": b"PK\x03\x04" + b"\0" * 200, "truncated.zip": zip_bytes({"a.png": png, "b.png": png})[:300],
        "only_junk.zip": zip_bytes({"readme.txt": b"hello", "run.sh": b"rm -rf /"}),
    }.items():
        write(name, data, corpus.archives)

    mp4 = video_bytes(folder / "valid.mp4")
    for name, data in {
        "noise.mp4": np.random.default_rng(2).integers(0, 256, 8192, dtype=np.uint8).tobytes(),
        "truncated.mp4": mp4[: len(mp4) // 3], "empty.webm": b"", "text.avi": b"RIFF....AVI LIST" + b"x" * 100,
    }.items():
        write(name, data, corpus.videos)

    deep = "[" * 100_000 + "]" * 100_000
    for name, data in {
        "not_json.json": b"{not json", "deep.json": deep.encode(),
        "wrong_types.json": json.dumps({"images": "x", "annotations": 5, "categories": None}).encode(),
        "bad_boxes.json": json.dumps({
            "images": [{"id": 1, "file_name": "part.png", "width": 96, "height": 72}],
            "categories": [{"id": 1, "name": "hole"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, "x"]},
                            {"id": 2, "image_id": 7, "category_id": 9, "bbox": [1e308, 0, 1e308, 1]}]}).encode(),
        "labels.txt": b"0 0.5 abc 0.2 0.2\n7 0.5 0.5 2 2\n", "xxe.xml": XXE, "laughs.xml": BILLION_LAUGHS,
        "unclosed.xml": b"<annotation><object><name>hole</name>",
    }.items():
        write(name, data, corpus.annotations)

    box = b'{"image_id":1,"category_id":1,"bbox":[1,1,2,2]}'
    sets = {"aliases": {"data.yaml": ALIAS_YAML, "part.txt": b"0 0.5 0.5 0.2 0.2\n"},
            "lines": {"classes.txt": b"hole\n", "part.txt": b"0 0.5 0.5 0.1 0.1\n" * 1_000_000},
            "boxes": {"part.json": b'{"images":[{"id":1,"file_name":"part.png"}],"categories":[{"id":1,"name":"hole"}],'
                                   b'"annotations":[' + b",".join([box] * 1_000_000) + b"]}"}}
    for folder_name, files in sets.items():
        (folder / folder_name).mkdir()
        paths = [folder / folder_name / name for name in files]
        for path, data in zip(paths, files.values(), strict=True):
            path.write_bytes(data)
        corpus.annotation_sets.append((list(files)[-1] if folder_name != "aliases" else "data.yaml", paths))
    return corpus


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="GIF")
    return buffer.getvalue()
