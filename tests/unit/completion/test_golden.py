"""Golden test: the tiny completion preset's proposals on a fixed small set, recorded before the completion tool
was moved onto its contract and torchvision's IoU and NMS, stay the same: boxes and scores as proposals.json rounds
them (6 decimals), to one unit of the last either way (float32 kernels differ between CPUs, AVX2 or AVX-512, in
the last bits, which can round the other way)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.completion import complete, evaluate
from tests.helpers import FIRST_PAGE_NOTE, several_pages

GOLDEN = Path(__file__).with_name("golden_tiny_proposals.json")
LAST_DIGIT = 1.5e-6  # one unit of the 6th decimal, with room for the float64 difference of two rounded values


def parts_set(folder: Path) -> list[tuple[str, Path]]:
    """Three noisy 96 x 72 images with three coloured squares each; two squares of the first are annotated."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    rng = np.random.default_rng(7)
    for n in range(3):
        image = Image.fromarray((rng.random((72, 96, 3)) * 60 + 40).astype("uint8"))
        draw = ImageDraw.Draw(image)
        for k in range(3):
            x, y = 8 + 28 * k, 10 + 14 * n
            draw.rectangle([x, y, x + 16, y + 16], fill=(220, 40 + 60 * k, 30))
        image.save(folder / f"part{n}.png")
        files.append((f"part{n}.png", folder / f"part{n}.png"))
    coco = {"images": [{"id": 1, "file_name": "part0.png", "width": 96, "height": 72}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [8, 10, 17, 17], "category_id": 1},
                            {"id": 2, "image_id": 1, "bbox": [36, 10, 17, 17], "category_id": 1}],
            "categories": [{"id": 1, "name": "part"}]}
    (folder / "ann.json").write_text(json.dumps(coco))
    return [*files, ("ann.json", folder / "ann.json")]


def test_tiny_preset_proposals_match_the_recorded_ones(tmp_path):
    inputs = complete.Inputs(images=parts_set(tmp_path / "in"), annotations=[], video=[])
    params = complete.Params(preset="completion-tiny", min_score=0.0, max_per_image=20, device="cpu")
    result = complete.run(inputs, params, tmp_path / "out")
    document = json.loads((tmp_path / "out" / "proposals.json").read_text())
    found = [[item["file"], p["id"], p["category"], p["box"], p["score"], p["exemplar"]]
             for item in document["images"] for p in item["proposals"]]
    expected = json.loads(GOLDEN.read_text())
    assert result.proposals == len(expected) == 60
    assert [(f[0], f[1], f[2], f[5]) for f in found] == [(e[0], e[1], e[2], e[5]) for e in expected]
    assert [f[3] for f in found] == [pytest.approx(e[3], abs=LAST_DIGIT) for e in expected]
    assert [f[4] for f in found] == [pytest.approx(e[4], abs=LAST_DIGIT) for e in expected]


def test_an_image_of_several_pages_is_completed_by_its_first_page_and_the_result_says_so(tmp_path, capsys):
    """Completion and its evaluation read a TIFF's first page without a word."""
    from engine.__main__ import main

    files = parts_set(tmp_path / "in")
    _, png = files[2]
    with Image.open(png) as first:
        files[2] = ("part2.tiff", several_pages(tmp_path / "in" / "part2.tiff", first.convert("RGB")))
    png.unlink()
    params = {"preset": "completion-tiny", "min_score": 0.0, "max_per_image": 5, "device": "cpu"}
    completed = complete.run(complete.Inputs(images=files, annotations=[], video=[]), complete.Params(**params),
                             tmp_path / "out")
    main(["complete", "evaluate", "--data", str(tmp_path / "in"), "--preset", "completion-tiny", "--device", "cpu",
          "--out", str(tmp_path / "evaluated")])
    assert f"note: part2.tiff: {FIRST_PAGE_NOTE}" in capsys.readouterr().err
    evaluated = json.loads((tmp_path / "evaluated" / evaluate.METRICS_FILE).read_text())
    assert completed.images == evaluated["images"] == 3
    for notes in (completed.notes, evaluated["notes"]):
        assert [note.split(" Save")[0] for note in notes] == [f"part2.tiff: {FIRST_PAGE_NOTE}"]
