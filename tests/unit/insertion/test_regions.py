"""Boxes, masks, crops and keyframes; pixels outside the mask are exactly the input's."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.insertion.regions import (
    context_box,
    interpolate_boxes,
    mask_from_image,
    model_size,
    parse_box,
    parse_keyframes,
    paste,
)
from tests.unit.insertion.common import noise_image


def test_boxes_masks_crops_and_keyframes():
    assert parse_box("10, 20, 50, 60", (100, 80)) == (10, 20, 50, 60)
    assert parse_box([50, 60, -5, 20], (100, 80)) == (0, 20, 50, 60)  # any corner order, clipped
    with pytest.raises(UserInputError, match="four numbers"):
        parse_box("10,20", (100, 80))
    with pytest.raises(UserInputError, match="covers no pixel"):
        parse_box([200, 200, 300, 300], (100, 80))
    crop = context_box((40, 30, 60, 50), (100, 80), context=0.25)
    assert crop[2] - crop[0] == crop[3] - crop[1] == 32 and crop[0] <= 40 and crop[2] >= 60
    assert model_size((0, 0, 300, 200), 512, 64) == (512, 320)
    keys = parse_keyframes("0: 0,0,10,10\n10: 10,20,30,40", (100, 80))
    assert interpolate_boxes(keys, 5) == (5, 10, 20, 25)
    assert interpolate_boxes(keys, 99) == (10, 20, 30, 40) and interpolate_boxes(keys, 0) == (0, 0, 10, 10)
    with pytest.raises(UserInputError, match="frame: x0,y0,x1,y1"):
        parse_keyframes("0 0,0,10,10", (100, 80))
    drawn = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    drawn.paste((0, 0, 0, 255), (10, 10, 20, 30))  # a black brush stroke on a transparent layer
    assert mask_from_image(drawn, (100, 80)).sum() == 10 * 20
    with pytest.raises(UserInputError, match="the mask is 100 x 80 pixels but the image is 90 x 80"):
        mask_from_image(drawn, (90, 80))


def test_paste_keeps_every_pixel_outside_the_mask():
    original = noise_image(seed=1)
    mask = np.zeros((72, 96), dtype=bool)
    mask[10:40, 20:70] = True
    mask[15:20, 25:30] = False  # a hole
    result = np.asarray(paste(original, Image.new("RGB", (64, 64), "red"), (10, 0, 80, 70), mask, feather=6))
    assert np.array_equal(result[~mask], np.asarray(original)[~mask])
    assert (result[mask] != np.asarray(original)[mask]).any()
