"""The tool contract's parameters (engine.params): checked once, with messages that name the field."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from engine.errors import UserInputError
from engine.params import Params, Result, add_arguments, from_args, param


@dataclass(frozen=True)
class Example(Params):
    threshold: float = param(0.3, "lowest score kept", ge=0, le=1)
    steps: int = param(20, "denoising steps", ge=1, le=200)
    mode: str = param("insert", "what to do", choices=("insert", "replace"))
    seed: int | None = param(None, "random seed", ge=0, le=2**32 - 1)
    rule: str | float = param("auto", "auto, or a fixed value")
    box: tuple[float, ...] | None = param(None, "x0,y0,x1,y1", ge=4, le=4)
    train_backbone: bool = param(False, "train the backbone too")


def test_defaults_values_from_forms_and_json_and_round_trip():
    assert Example().to_dict() == {"threshold": 0.3, "steps": 20, "mode": "insert", "seed": None, "rule": "auto",
                                   "box": None, "train_backbone": False}
    given = Example.from_dict({"threshold": "0.5", "steps": 7.0, "seed": "", "rule": "0.25", "box": "1,2,3,4",
                               "train_backbone": "true"})
    assert (given.threshold, given.steps, given.seed, given.rule, given.box, given.train_backbone) == (
        0.5, 7, None, 0.25, (1.0, 2.0, 3.0, 4.0), True)
    assert Example.from_dict(given.to_dict()) == given


@pytest.mark.parametrize(("values", "named"), [
    ({"threshold": 1.5}, "threshold: a number from 0 to 1, not 1.5"),
    ({"threshold": "1e400"}, "threshold: a number from 0 to 1"),
    ({"threshold": float("nan")}, "threshold: a number from 0 to 1, not nan"),
    ({"steps": 2.5}, "steps: a whole number from 1 to 200"),
    ({"steps": True}, "steps: a whole number"),
    ({"mode": "paint"}, "mode: one of insert, replace, not 'paint'"),
    ({"seed": 2**70}, "seed: a whole number from 0 to 4.29497e+09"),
    ({"box": "1,2,3"}, "box: exactly 4 finite numbers (x0,y0,x1,y1)"),
    ({"box": "1,2,NaN,4"}, "box: "),
    ({"rule": [1]}, "rule: text or a number"),
    ({"colour": "red"}, "Unknown parameter colour; accepted: threshold, steps"),
])
def test_a_bad_value_names_the_field_and_what_is_accepted(values, named):
    with pytest.raises(UserInputError, match=None) as caught:
        Example.from_dict(values)
    assert named in str(caught.value)


@dataclass(frozen=True)
class Lists(Params):
    weights: tuple[float, ...] = param((1.0,), "one weight per class", ge=1, le=3)
    seeds: tuple[int, ...] = param((0,), "seeds", ge=1, le=3)
    size: tuple[int, ...] = param((8, 8), "width, height", ge=2, le=2)


@pytest.mark.parametrize(("values", "said"), [
    ({"weights": "1,inf"}, "weights: a list of finite numbers from 1 to 3 items, not '1,inf'."),
    ({"seeds": "1,2,3,4"}, "seeds: a list of whole numbers from 1 to 3 items, not '1,2,3,4'."),
    ({"size": "8"}, "size: exactly 2 whole numbers (width, height), not '8'."),
])
def test_a_list_is_described_by_its_length_and_items_and_quoted_as_given(values, said):
    with pytest.raises(UserInputError) as caught:
        Lists.from_dict(values)
    assert str(caught.value) == said


def test_the_command_line_accepts_what_a_job_accepts():
    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    args = parser.parse_args(["--threshold", "0.4", "--mode", "replace", "--train-backbone", "--box", "0,0,8,8"])
    assert from_args(Example, args) == Example(threshold=0.4, mode="replace", train_backbone=True, box=(0, 0, 8, 8))
    with pytest.raises(UserInputError, match="steps: a whole number"):
        from_args(Example, parser.parse_args(["--steps", "many"]))
    assert "default 0.3" in parser.format_help() and "[0..1]" in parser.format_help()


def test_results_keep_their_outputs_apart_from_the_json():
    @dataclass
    class Counted(Result):
        found: int
        rows: list[dict]

    result = Counted(3, [{"file": "a b.png"}], outputs=["a b.png"])
    assert result.to_json() == {"found": 3, "rows": [{"file": "a b.png"}]} and result.outputs == ["a b.png"]
