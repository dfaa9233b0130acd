"""Draw the sample inputs: `python -m assets.make [--out DIR]` (default: this folder).

Everything is drawn from fixed seeds with numpy and Pillow; JPEG, PNG, zip entries and the mp4 carry no time
or machine, so a rebuild gives the same bytes (the test suite checks it). Shapes are drawn at 4x and reduced, for
smooth edges.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import assets
from engine.video import VideoWriter

SS = 4  # supersampling factor of drawn shapes
JPEG_QUALITY = 88
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: entries carry no build time


# --- textures -------------------------------------------------------------------------------------------------

def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a cells x cells grid of random values, bicubically enlarged."""
    grid = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64).clip(0, 1)


def brushed(rng: np.random.Generator, height: int, width: int, length: int = 40) -> np.ndarray:
    """Brushed-metal grain around 0: noise averaged along x, so it runs in streaks."""
    noise = rng.normal(0, 1, (height, width + length))
    summed = np.cumsum(noise, axis=1)
    return (summed[:, length:] - summed[:, :-length])[:, :width] / math.sqrt(length)


def supersampled_mask(size: tuple[int, int], draw: callable) -> np.ndarray:
    """A soft mask in [0, 1] of what `draw(ImageDraw, scale)` paints white at SS times the size."""
    big = Image.new("L", (size[0] * SS, size[1] * SS), 0)
    draw(ImageDraw.Draw(big), SS)
    return np.asarray(big.reduce(SS), dtype=np.float64) / 255.0


def blend(base: np.ndarray, colour: np.ndarray | tuple, alpha: np.ndarray) -> np.ndarray:
    return base * (1 - alpha[..., None]) + np.asarray(colour, dtype=np.float64) * alpha[..., None]


def to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8))


# --- metal plates ---------------------------------------------------------------------------------------------

def plate(rng: np.random.Generator, size: int, defect: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, alpha) of a square brushed-steel plate with four bolt holes, optionally with a defect."""
    value = 150 + 7 * brushed(rng, size, size) + 30 * (smooth_noise(rng, size, size, 3) - 0.5)
    value += np.linspace(12, -12, size)[None, :] + np.linspace(8, -8, size)[:, None]  # light from the top left
    corner = size * 0.06
    shape = supersampled_mask((size, size), lambda d, s: d.rounded_rectangle(
        (0, 0, size * s - 1, size * s - 1), radius=corner * s, fill=255))
    inner = supersampled_mask((size, size), lambda d, s: d.rounded_rectangle(
        (3 * s, 3 * s, (size - 3) * s - 1, (size - 3) * s - 1), radius=corner * s, fill=255))
    rim = shape - inner
    ramp = np.add.outer(np.linspace(1, -1, size), np.linspace(1, -1, size)) / 2  # bevel: lit top left
    value += rim * 45 * ramp
    hole_r, hole_c = size * 0.045, size * 0.12
    centres = [(hole_c, hole_c), (size - hole_c, hole_c), (hole_c, size - hole_c), (size - hole_c, size - hole_c)]
    ring = supersampled_mask((size, size), lambda d, s: [d.ellipse(
        ((x - hole_r * 1.5) * s, (y - hole_r * 1.5) * s, (x + hole_r * 1.5) * s, (y + hole_r * 1.5) * s), fill=255)
        for x, y in centres])
    holes = supersampled_mask((size, size), lambda d, s: [d.ellipse(
        ((x - hole_r) * s, (y - hole_r) * s, (x + hole_r) * s, (y + hole_r) * s), fill=255) for x, y in centres])
    value += 18 * (ring - holes)  # polished countersink around each hole
    rgb = value[..., None] * np.array([0.97, 1.0, 1.04])
    rgb = blend(rgb, (28, 29, 32), holes)
    if defect:
        rgb = DEFECTS[defect](rng, rgb, size) * inner[..., None] + rgb * (1 - inner[..., None])
    return rgb, shape


def scratch(rng: np.random.Generator, rgb: np.ndarray, size: int) -> np.ndarray:
    """A long thin curved groove: a dark line with a bright edge beside it."""
    start = rng.uniform([0.25, 0.3], [0.4, 0.45]) * size
    end = rng.uniform([0.65, 0.55], [0.8, 0.75]) * size
    bend = rng.uniform(-0.12, 0.12) * size
    points = []
    for t in np.linspace(0, 1, 24):
        x, y = start + (end - start) * t
        points.append((x - bend * 4 * t * (1 - t), y + bend * 4 * t * (1 - t)))
    width = max(1.0, size / 110)

    def line(offset: float):
        return lambda d, s: d.line([((x + offset) * s, (y + offset) * s) for x, y in points], fill=255,
                                   width=round(width * s), joint="curve")

    rgb = blend(rgb, (205, 210, 218), supersampled_mask((size, size), line(-width)) * 0.8)
    return blend(rgb, (62, 60, 60), supersampled_mask((size, size), line(0)) * 0.9)


def dent(rng: np.random.Generator, rgb: np.ndarray, size: int) -> np.ndarray:
    """A round dent: shaded dark on the lit side and bright on the other, as a hollow is."""
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    sigma = size * 0.07
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    gauss = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    slope = ((x - cx) + (y - cy)) / sigma * gauss  # towards the bottom right: facing the light
    return rgb + (70 * slope - 25 * gauss)[..., None]


def stain(rng: np.random.Generator, rgb: np.ndarray, size: int) -> np.ndarray:
    """An irregular rust-brown stain with a darker rim."""
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    radius = size * 0.13
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    falloff = 1 - np.hypot(x - cx, y - cy) / radius
    blob = np.clip((falloff + 0.6 * (smooth_noise(rng, size, size, 9) - 0.5)) * 6, 0, 1)
    edge = np.clip(blob * (1 - blob) * 4, 0, 1)
    mottle = 0.55 + 0.35 * smooth_noise(rng, size, size, 24)  # rust is patchy, not a flat fill
    rgb = blend(rgb, (150, 92, 48), blob * mottle)
    return blend(rgb, (96, 60, 36), edge * 0.6)


DEFECTS = {"scratch": scratch, "dent": dent, "stain": stain}


def on_bench(part: tuple[np.ndarray, np.ndarray], size: int, seed: int) -> Image.Image:
    """A plate centred on a dark workbench with its shadow."""
    rng = np.random.default_rng(seed)
    rgb, alpha = part
    bench = (48 + 10 * smooth_noise(rng, size, size, 5) + 3 * rng.normal(0, 1, (size, size)))[..., None]
    out = bench * np.array([0.95, 1.0, 1.08])
    offset = (size - alpha.shape[0]) // 2
    shadow = np.zeros((size, size))
    shadow[offset + 5:offset + 5 + alpha.shape[0], offset + 5:offset + 5 + alpha.shape[1]] = alpha
    shadow = np.asarray(to_image(shadow * 255).filter(ImageFilter.GaussianBlur(4)), dtype=np.float64) / 255
    out = out * (1 - 0.55 * shadow[..., None])
    window = (slice(offset, offset + alpha.shape[0]), slice(offset, offset + alpha.shape[1]))
    out[window] = blend(out[window], 0, alpha) + rgb * alpha[..., None]
    return to_image(out)


def anomaly_samples(out: Path) -> None:
    size, part = 256, 216
    for index, name in enumerate(assets.ANOMALY_GOOD):
        save_jpeg(on_bench(plate(np.random.default_rng(100 + index), part), size, 200 + index), out / name)
    for index, name in enumerate(assets.ANOMALY_INSPECT):
        defect = name.removeprefix("plate_").removesuffix(".jpg")
        part_image = plate(np.random.default_rng(300 + index), part, None if defect == "ok" else defect)
        save_jpeg(on_bench(part_image, size, 400 + index), out / name)
    conveyor_video(out)


CONVEYOR = {"width": 240, "height": 160, "part": 96, "gap": 150, "speed": 10}


def conveyor_frame(parts: list[tuple[np.ndarray, np.ndarray]], ribs: np.ndarray, shift: int) -> np.ndarray:
    """The belt moved by `shift` pixels, with the plates on it (the first one enters first)."""
    width, height, part, gap = (CONVEYOR[k] for k in ("width", "height", "part", "gap"))
    belt = 44 + 6 * np.tile(np.roll(ribs, shift)[None, :width], (height, 1))
    belt[:, (np.arange(width) - shift) % 24 < 2] -= 14  # belt joints
    frame = np.repeat(belt[..., None], 3, axis=2) * np.array([1.0, 1.0, 1.05])
    frame[:14] = frame[-14:] = (92, 96, 90)  # the conveyor's side rails
    frame[12:14] = frame[-14:-12] = (140, 144, 138)
    for k, (rgb, alpha) in enumerate(parts):
        x = shift - part - k * gap
        if x <= -part or x >= width:
            continue
        y = (height - part) // 2
        left, right = max(x, 0), min(x + part, width)
        window = (slice(y, y + part), slice(left, right))
        a = alpha[:, left - x:right - x]
        frame[window] = blend(frame[window] * 0.75, 0, a) + rgb[:, left - x:right - x] * a[..., None]
    return frame


def conveyor_video(folder: Path, fps: float = 12) -> None:
    """Five plates riding a conveyor belt past the camera, the fourth one stained; and, as good parts framed like
    the video, stills of the first two centred."""
    rng = np.random.default_rng(500)
    parts = [plate(rng, CONVEYOR["part"], "stain" if k == 3 else None) for k in range(5)]
    ribs = rng.normal(0, 1, CONVEYOR["width"] + 400)
    frame_count = (CONVEYOR["width"] + CONVEYOR["gap"] * len(parts)) // CONVEYOR["speed"]
    with VideoWriter(folder / assets.ANOMALY_VIDEO, fps, quality=27, reproducible=True) as writer:
        for index in range(frame_count):
            writer.write(to_image(conveyor_frame(parts, ribs, index * CONVEYOR["speed"])))
    centred = (CONVEYOR["width"] + CONVEYOR["part"]) // 2
    for k, name in enumerate(assets.ANOMALY_VIDEO_GOOD):
        save_jpeg(to_image(conveyor_frame(parts, ribs, centred + k * CONVEYOR["gap"] + 5 * k)), folder / name)


# --- small parts: hex nuts, washers, screws -------------------------------------------------------------------

def draw_nut(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float) -> tuple[float, ...]:
    """A hex nut seen from above (coordinates already scaled); returns its box."""
    corners = [(cx + r * math.cos(angle + k * math.pi / 3), cy + r * math.sin(angle + k * math.pi / 3))
               for k in range(6)]
    draw.polygon([(x + r * 0.12, y + r * 0.12) for x, y in corners], fill=(40, 40, 44))  # shadow
    draw.polygon(corners, fill=(150, 152, 158), outline=(92, 94, 100), width=max(1, round(r / 12)))
    draw.ellipse((cx - r * 0.78, cy - r * 0.78, cx + r * 0.78, cy + r * 0.78), fill=(188, 190, 196))  # chamfer
    draw.ellipse((cx - r * 0.5, cy - r * 0.5, cx + r * 0.5, cy + r * 0.5), fill=(96, 98, 104))  # thread
    draw.ellipse((cx - r * 0.38, cy - r * 0.38, cx + r * 0.38, cy + r * 0.38), fill=(30, 30, 34))  # bore
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


def draw_washer(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, hole: tuple) -> tuple[float, ...]:
    """A brass washer from above, the surface below showing through its hole; returns its box."""
    draw.ellipse((cx - r + r * 0.12, cy - r + r * 0.12, cx + r * 1.12, cy + r * 1.12), fill=(40, 40, 44))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(196, 158, 72), outline=(140, 108, 40),
                 width=max(1, round(r / 12)))
    draw.ellipse((cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), outline=(226, 192, 110),
                 width=max(1, round(r / 10)))
    draw.ellipse((cx - r * 0.45, cy - r * 0.45, cx + r * 0.45, cy + r * 0.45), fill=hole)
    return cx - r, cy - r, cx + r, cy + r


def draw_screw(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float) -> tuple[float, ...]:
    """A machine screw lying on its side, head and threaded shank along `angle`; returns its box."""
    ux, uy = math.cos(angle), math.sin(angle)
    vx, vy = -uy, ux

    def at(a: float, b: float) -> tuple[float, float]:
        return cx + ux * a * r + vx * b * r, cy + uy * a * r + vy * b * r

    points = []
    shank = [at(-0.6, -0.22), at(1.0, -0.22), at(1.15, 0), at(1.0, 0.22), at(-0.6, 0.22)]
    draw.polygon(shank, fill=(150, 152, 158), outline=(80, 82, 88))
    for k in range(9):  # thread crests
        a = -0.5 + k * 0.17
        draw.line([at(a, -0.24), at(a + 0.08, 0.24)], fill=(96, 98, 104), width=max(1, round(r / 14)))
    head = [at(-1.15, -0.5), at(-0.6, -0.5), at(-0.6, 0.5), at(-1.15, 0.5)]
    draw.polygon(head, fill=(176, 178, 184), outline=(80, 82, 88))
    draw.line([at(-1.15, 0), at(-0.95, 0)], fill=(40, 40, 44), width=max(1, round(r / 8)))  # slot
    points = shank + head
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def surface(rng: np.random.Generator, width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    """A plain work surface at SS times the size: a colour with gentle shading and grain."""
    shade = 14 * (smooth_noise(rng, height, width, 4) - 0.5) + 3 * rng.normal(0, 1, (height, width))
    small = to_image(np.asarray(colour, dtype=np.float64) + shade[..., None])
    return small.resize((width * SS, height * SS), Image.Resampling.BICUBIC)


def tray(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A blue-grey plastic parts tray with a raised rim, at SS times the size."""
    picture = surface(rng, width, height, (150, 162, 172))
    draw = ImageDraw.Draw(picture)
    rim = 8 * SS
    draw.rectangle((0, 0, width * SS - 1, height * SS - 1), outline=(112, 124, 136), width=rim)
    draw.rectangle((rim, rim, width * SS - rim - 1, height * SS - rim - 1), outline=(176, 186, 196), width=SS)
    return picture


TRAY_HOLE = (150, 162, 172)


def tray_scene(seed: int, width: int, height: int, cols: int, rows: int,
               washer_share: float = 0.4) -> tuple[Image.Image, list[tuple[str, tuple[float, ...]]]]:
    """A tray of hex nuts and washers in loose rows: (picture, [(class, box in pixels)])."""
    rng = np.random.default_rng(seed)
    picture = tray(rng, width, height)
    draw = ImageDraw.Draw(picture)
    cell_w, cell_h = (width - 24) / cols, (height - 24) / rows
    radius = min(cell_w, cell_h) * 0.3
    objects = []
    for row in range(rows):
        for col in range(cols):
            cx = 12 + (col + 0.5) * cell_w + rng.uniform(-0.12, 0.12) * cell_w
            cy = 12 + (row + 0.5) * cell_h + rng.uniform(-0.12, 0.12) * cell_h
            r = radius * rng.uniform(0.9, 1.1) * SS
            if rng.random() < washer_share:
                box = draw_washer(draw, cx * SS, cy * SS, r, TRAY_HOLE)
                objects.append(("washer", box))
            else:
                box = draw_nut(draw, cx * SS, cy * SS, r, rng.uniform(0, math.pi / 3))
                objects.append(("hex nut", box))
    boxes = [(name, tuple(v / SS for v in box)) for name, box in objects]
    return picture.reduce(SS), boxes


def coco(entries: list[tuple[str, Image.Image, list[tuple[str, tuple[float, ...]]]]],
         classes: tuple[str, ...]) -> dict:
    """COCO detection JSON of (file name, picture, [(class, box)]) entries; boxes rounded to 0.1 px."""
    data: dict = {"images": [], "annotations": [],
                  "categories": [{"id": k + 1, "name": name} for k, name in enumerate(classes)]}
    for image_id, (name, picture, boxes) in enumerate(entries, 1):
        data["images"].append({"id": image_id, "file_name": name, "width": picture.width, "height": picture.height})
        for cls, (x0, y0, x1, y1) in boxes:
            w, h = round(x1 - x0, 1), round(y1 - y0, 1)
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": image_id,
                                        "category_id": classes.index(cls) + 1, "bbox": [round(x0, 1), round(y0, 1),
                                        w, h], "area": round(w * h, 1), "iscrowd": 0})
    return data


def completion_samples(out: Path) -> None:
    """Two trays of nuts and washers; only three objects of the first are boxed."""
    entries = []
    for index, name in enumerate(assets.COMPLETION_IMAGES):
        picture, boxes = tray_scene(600 + index, 320, 240, 6, 4)
        save_jpeg(picture, out / name)
        if index == 0:
            first_nut = next(b for b in boxes if b[0] == "hex nut")
            first_washer = next(b for b in boxes if b[0] == "washer")
            second_nut = next(b for b in boxes if b[0] == "hex nut" and b is not first_nut)
            boxes = [first_nut, second_nut, first_washer]
        else:
            boxes = []
        entries.append((name, picture, boxes))
    write_json(coco(entries, ("hex nut", "washer")), out / assets.COMPLETION_ANNOTATIONS)


def part_crop(rng: np.random.Generator, kind: str, size: int = 96) -> Image.Image:
    """One part on a random work surface, at a random place, size and angle: a classifier example."""
    colour = [(150, 162, 172), (62, 64, 70), (168, 132, 96)][int(rng.integers(0, 3))]
    picture = surface(rng, size, size, colour)
    draw = ImageDraw.Draw(picture)
    r = size * rng.uniform(0.26, 0.34) * SS
    cx, cy = (size * SS / 2 + rng.uniform(-0.08, 0.08, 2) * size * SS)
    if kind == "hex nut":
        draw_nut(draw, cx, cy, r, rng.uniform(0, math.pi / 3))
    elif kind == "washer":
        draw_washer(draw, cx, cy, r, colour)
    else:
        draw_screw(draw, cx, cy, r * 1.1, rng.uniform(0, 2 * math.pi))
    return picture.reduce(SS)


def finetune_samples(out: Path) -> None:
    rng = np.random.default_rng(700)
    files = {}
    for kind in assets.CLASSIFIER_CLASSES:
        folder = kind.replace(" ", "_")
        for index in range(8):
            files[f"{folder}/{folder}_{index + 1}.jpg"] = jpeg_bytes(part_crop(rng, kind))
    write_zip(files, out / assets.CLASSIFIER_ZIP)
    entries, files = [], {}
    for index in range(12):
        picture, boxes = tray_scene(800 + index, 160, 120, 3, 2, washer_share=0.5)
        name = f"images/tray_{index + 1:02d}.jpg"
        files[name] = jpeg_bytes(picture)
        entries.append((name, picture, boxes))
    files["annotations.json"] = json.dumps(coco(entries, ("hex nut", "washer")), indent=1).encode()
    write_zip(files, out / assets.DETECTOR_ZIP)


# --- insertion: a desk ----------------------------------------------------------------------------------------

def desk(width: int, height: int) -> Image.Image:
    """A wooden desk against a pale wall, a mug and a notebook on it, its right half free, at SS times the size."""
    rng = np.random.default_rng(900)
    wall_h = int(height * 0.42)
    y = np.arange(height - wall_h)[:, None]
    x = np.arange(width)[None, :]
    warp = 6 * smooth_noise(rng, height - wall_h, width, 6)
    grain = np.sin((y + warp * 3 + 0.02 * x) * 0.9) * 0.5 + 0.5
    wood = 120 + 30 * grain + 12 * (smooth_noise(rng, height - wall_h, width, 5) - 0.5) + 4 * rng.normal(
        0, 1, (height - wall_h, width))
    wood = wood[..., None] * np.array([1.25, 0.9, 0.6]) * np.linspace(0.85, 1.0, height - wall_h)[:, None, None]
    wall = (214 + 8 * smooth_noise(rng, wall_h, width, 3) - np.linspace(0, 14, width)[None, :])[..., None] \
        * np.array([1.0, 0.98, 0.93])
    scene = to_image(np.concatenate([wall, wood])).resize((width * SS, height * SS), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(scene)
    edge = wall_h * SS
    draw.rectangle((0, edge - SS, width * SS, edge + SS), fill=(96, 62, 38))  # the desk's back edge
    s = SS
    draw.polygon([(22 * s, 150 * s), (96 * s, 140 * s), (118 * s, 176 * s), (36 * s, 188 * s)], fill=(46, 74, 120))
    draw.line([(26 * s, 156 * s), (40 * s, 186 * s)], fill=(230, 230, 226), width=2 * s)  # notebook and its pages
    draw.ellipse((44 * s, 130 * s, 70 * s, 136 * s), fill=(70, 50, 40))  # mug shadow
    draw.rectangle((44 * s, 96 * s, 70 * s, 133 * s), fill=(236, 236, 230))
    draw.ellipse((44 * s, 92 * s, 70 * s, 100 * s), fill=(90, 60, 40))  # coffee
    draw.arc((64 * s, 104 * s, 80 * s, 124 * s), -90, 90, fill=(236, 236, 230), width=3 * s)  # handle
    draw.line([(44 * s, 100 * s), (44 * s, 133 * s)], fill=(200, 200, 194), width=s)
    return scene


def insertion_samples(out: Path) -> None:
    width, height = 256, 192
    scene = desk(width + 16, height)
    save_jpeg(scene.reduce(SS).crop((0, 0, width, height)), out / assets.INSERTION_IMAGE)
    with VideoWriter(out / assets.INSERTION_VIDEO, 8, quality=24, reproducible=True) as writer:
        small = scene.reduce(SS)
        for index in range(8):  # a one-second pan: few frames, so the demo model's sample runs in a minute
            shift = round(8 * (1 - math.cos(index / 7 * math.pi)))
            writer.write(small.crop((shift, 0, shift + width, height)))


# --- writing, with nothing that changes between runs ----------------------------------------------------------

def jpeg_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def save_jpeg(picture: Image.Image, path: Path) -> None:
    path.write_bytes(jpeg_bytes(picture))


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


def write_zip(files: dict[str, bytes], path: Path) -> None:
    """A zip whose entries have a fixed time and permissions, in a fixed order."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, files[name])


MAKERS = {"anomaly": anomaly_samples, "completion": completion_samples, "insertion": insertion_samples,
          "finetune": finetune_samples}


def make(out: Path) -> list[Path]:
    """Write every sample under `out/<tool>/`; returns the files written."""
    written = []
    for tool, maker in MAKERS.items():
        folder = out / tool
        folder.mkdir(parents=True, exist_ok=True)
        maker(folder)
        written += sorted(p for p in folder.iterdir() if p.is_file())
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=assets.ROOT, help="where to write (default: the assets folder)")
    args = parser.parse_args(argv)
    written = make(args.out)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} files, {total / 1024:.0f} KiB, under {args.out}")


if __name__ == "__main__":
    main()
