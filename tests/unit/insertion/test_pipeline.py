"""InVi insertion with the tiny preset: what can be checked without trained weights.

The anchor frame equals diffusers' own ControlNet inpaint pipeline; the extended-attention processor
really reads the anchor's keys and values; pixels outside the mask are exactly the input's, for
images and every video frame; a seed gives the same output twice; bad input gets a clear message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import UserInputError
from engine.insertion.regions import mask_from_box
from tests.unit.insertion.common import STEPS, noise_image, settings


def test_anchor_without_extended_attention_equals_diffusers_controlnet_inpaint(pipeline):
    from engine.insertion.model import load_pipeline

    image, options = noise_image(), settings(guidance=5.0, strength=0.9)
    crop = pipeline.crop(image, mask_from_box((30, 20, 70, 50), image.size), options)
    ours, _ = pipeline.inpaint([crop], options, [11], attention="off")
    recording, recorded = pipeline.inpaint([crop], options, [11], attention="record")
    reference = load_pipeline("insertion-tiny", torch.float32)
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        options.prompt, image=crop.image, mask_image=crop.mask,
        control_image=torch.from_numpy(crop.control).permute(2, 0, 1)[None], height=crop.size[1], width=crop.size[0],
        strength=0.9, num_inference_steps=STEPS, guidance_scale=5.0, negative_prompt="",
        controlnet_conditioning_scale=1.0, generator=torch.Generator().manual_seed(11), output_type="np",
    ).images
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_allclose(recording, expected, rtol=0, atol=1e-6)  # recording does not change the anchor
    assert {step for step, _ in recorded} == set(range(int(STEPS * 0.9)))
    assert len({layer for _, layer in recorded}) == pipeline.extended_layers > 0


def test_image_insertion_keeps_outside_pixels_and_repeats_with_the_same_seed(pipeline):
    image = noise_image()
    mask = mask_from_box((30, 20, 70, 50), image.size)
    first = pipeline.insert_image(image, mask, settings(variants=2))
    again = pipeline.insert_image(image, mask, settings())
    (seed_a, a), (seed_b, b) = first.images
    assert (seed_a, seed_b) == (3, 4)
    assert np.array_equal(np.asarray(a), np.asarray(again.images[0][1]))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    for _, result in first.images:
        assert np.array_equal(np.asarray(result)[~mask], np.asarray(image)[~mask])
        assert (np.asarray(result)[mask] != np.asarray(image)[mask]).mean() > 0.5


def test_a_wide_region_at_the_edge_gets_a_non_square_crop(pipeline):
    image = noise_image(96, 40)
    mask = mask_from_box((0, 5, 90, 35), image.size)
    crop = pipeline.crop(image, mask, settings())
    assert crop.box == (0, 0, 96, 40) and crop.size == (32, 16)
    result = np.asarray(pipeline.insert_image(image, mask, settings()).images[0][1])
    assert np.array_equal(result[~mask], np.asarray(image)[~mask])


def test_replace_mode_grows_the_mask_and_keeps_the_rest(pipeline):
    image = noise_image()
    mask = mask_from_box((30, 20, 70, 50), image.size)
    result = pipeline.insert_image(image, mask, settings(mode="replace", replace_grow=3))
    assert result.mask.sum() == (40 + 6) * (30 + 6)
    assert np.array_equal(np.asarray(result.images[0][1])[~result.mask], np.asarray(image)[~result.mask])


def test_a_following_frame_reads_the_anchor_through_every_self_attention_layer(pipeline):
    options = settings()
    mask = mask_from_box((20, 10, 60, 50), (96, 72))
    anchor_crop, frame_crop = (pipeline.crop(noise_image(seed=s), mask, options) for s in (1, 2))
    _, recorded = pipeline.inpaint([anchor_crop], options, [3], attention="record")
    plain, _ = pipeline.inpaint([frame_crop], options, [3], attention="off")
    extended, _ = pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    again, _ = pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    assert not np.array_equal(extended, plain)  # random weights: a small change, but a deterministic one
    np.testing.assert_array_equal(extended, again)
    reads = []
    original_get = pipeline.store.get
    pipeline.store.get = lambda layer: reads.append((pipeline.store.step, layer)) or original_get(layer)
    try:
        pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    finally:
        del pipeline.store.get
    assert sorted(reads) == sorted(recorded)  # every (step, layer) the anchor recorded, read once


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (np.zeros((72, 96), dtype=bool), "The mask is empty"),
        (np.ones((72, 96), dtype=bool), "covers the whole frame"),
        (np.ones((10, 10), dtype=bool), "The mask is 10 x 10 pixels but the image is 96 x 72"),
    ],
)
def test_bad_masks_are_refused_with_a_message(pipeline, mask, expected):
    with pytest.raises(UserInputError, match=expected):
        pipeline.insert_image(noise_image(), mask, settings())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({"prompt": "  "}, "The prompt is empty"), ({"steps": 0}, "steps: a whole number from 1 to 150"),
     ({"strength": 0.1, "steps": 5}, "leave no denoising step"), ({"mode": "erase"}, "mode: one of insert, replace")],
)
def test_bad_settings_are_refused_with_a_message(pipeline, overrides, expected):
    with pytest.raises(UserInputError, match=expected):
        pipeline.insert_image(noise_image(), mask_from_box((10, 10, 30, 30), (96, 72)), settings(**overrides))


@pytest.mark.parametrize("prompt", ["😀" * 50, "x" + "😀" * 50, "xy" + "😀" * 50, "é" * 120])
def test_a_cut_prompt_is_quoted_up_to_a_whole_character(pipeline, prompt):
    """The tokenizer reads bytes: a prompt cut at its token limit can end inside a character (an emoji is four
    bytes), which the note quoted as a broken "�"."""
    (note,) = pipeline.prompt_notes(settings(prompt=prompt))
    kept = note.split("“…")[1].split("”")[0]
    assert "\ufffd" not in note and kept and kept.replace(" ", "") in prompt  # the tokenizer spaces words apart
