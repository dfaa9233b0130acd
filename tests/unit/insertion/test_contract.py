"""The job contract of insertion: parameters refused by name, the same run as the CLI."""

from __future__ import annotations

import pytest

from engine.errors import UserInputError
from engine.insertion.insert import Inputs, Params, run
from tests.unit.insertion.common import noise_image


@pytest.mark.parametrize(("values", "named"), [
    ({"box": "1e309,0,10,10"}, "box: exactly 4 finite numbers (region x0,y0,x1,y1 in pixels, of the image or the "
                               "anchor frame), not '1e309,0,10,10'"),
    ({"box": "NaN,0,10,10"}, "box: exactly 4 finite numbers"),
    ({"box": [10**400, 0, 1, 1]}, "box: exactly 4 finite numbers"),
    ({"box": "1,2,3"}, "box: exactly 4 finite numbers"),
    ({"guidance": "1e309"}, "guidance: a number from 0 to 30"),
    ({"strength": 0}, "strength: a number above 0 and at most 1"),
    ({"region_mode": "guess"}, "region_mode: one of same, interpolate, masks"),
    ({"anchor_frame": -1}, "anchor_frame: a whole number of at least 0"),
    ({"preset": "winclip-tiny"}, "preset: one of insertion-sd15-controlnet-inpaint, insertion-tiny"),
    ({"seed": 2**32 - 2, "variants": 3}, "seed, variants: seeds 4294967294 to 4294967296 go past"),
    ({"colour": "red"}, "Unknown parameter colour"),
])
def test_bad_parameters_are_refused_naming_the_field(values, named):
    with pytest.raises(UserInputError) as caught:
        Params.from_dict({"prompt": "a red ball", **values})
    assert named in str(caught.value)


BOX = "box: exactly 4 finite numbers (region x0,y0,x1,y1 in pixels, of the image or the anchor frame), not "


@pytest.mark.parametrize(("box", "said"), [("1,2,3", BOX + "'1,2,3'."), ([1, 2, 3, 4, 5], BOX + "[1, 2, 3, 4, 5]."),
                                           ("nan,nan,nan,nan", BOX + "'nan,nan,nan,nan'."),
                                           ("1e309,0,10,10", BOX + "'1e309,0,10,10'.")])
def test_a_bad_box_is_told_how_many_numbers_a_box_is_and_that_they_are_finite(box, said):
    """A box of three numbers was "a list of numbers from 4 to 4 items, not (1.0, 2.0, 3.0)", and four numbers
    that are not finite got the same text about items."""
    with pytest.raises(UserInputError) as caught:
        Params.from_dict({"prompt": "a red ball", "box": box})
    assert str(caught.value) == said


def test_values_from_a_form_are_kept_as_the_model_reads_them():
    params = Params.from_dict({"prompt": " a red ball ", "seed": "7", "steps": 20.0, "box": "1,2,30,40",
                               "keyframes": "", "extended_attention": "false"})
    assert (params.prompt, params.seed, params.steps, params.box, params.keyframes, params.extended_attention) == (
        "a red ball", 7, 20, (1.0, 2.0, 30.0, 40.0), None, False)
    assert Params.from_dict(params.to_dict()) == params


def test_the_job_run_needs_one_image_or_one_video(tmp_path):
    noise_image().save(tmp_path / "photo.png")
    photo = [("photo.png", tmp_path / "photo.png")]
    with pytest.raises(UserInputError, match="Upload one image or one video"):
        run(Inputs(image=photo, video=photo, mask=[], masks=[]), Params(prompt="a cat", preset="insertion-tiny"),
            tmp_path / "out")


def test_the_web_process_decodes_no_video():
    from tests.unit.test_architecture import modules_loaded_by

    assert modules_loaded_by("webapp.app, tasks.client, engine.insertion.insert, engine.video_frame",
                             ("av", "torch", "diffusers")) == []
