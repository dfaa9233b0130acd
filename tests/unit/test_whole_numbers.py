"""A whole-number setting given a fraction (a frame stride of 0.5, a proposal #2.5) is refused quoting what was
given, from the page and the API alike: it reached the contract truncated (int(0.5) is 0, so the message said
"not 0"; 1.99 ran as 1) or rounded by Gradio (a number field with precision=0 makes 2.5 a 2)."""

from __future__ import annotations

import gradio as gr
import pytest

from tasks.registry import contract
from webapp import anomaly_tab, completion_tab


def test_no_number_field_of_the_app_rounds_what_it_is_given():
    from webapp.app import build_app

    numbers = [block for block in build_app().blocks.values() if isinstance(block, gr.Number)]
    assert len(numbers) > 10
    assert [block.label for block in numbers if block.precision == 0] == []  # 0: Gradio gives int(round(value))


def _preset(tool: str) -> str:
    return contract(tool).Params.spec("preset").default


@pytest.mark.parametrize("stride", [0.5, 1.99])
def test_a_fractional_video_stride_is_refused_by_its_value(stride):
    with pytest.raises(gr.Error) as refused:
        next(anomaly_tab.run_video("line.mp4", None, "metal plate", _preset("anomaly_video"), "Every Nth frame",
                                   stride))
    assert refused.value.message == f"stride: a whole number of at least 1, not {stride}."


def test_fractional_shots_and_completion_strides_are_refused_by_their_value():
    with pytest.raises(gr.Error) as shots:
        next(anomaly_tab.run_evaluation("set.zip", "metal plate", 2.5, _preset("anomaly_evaluate")))
    with pytest.raises(gr.Error) as stride:
        next(completion_tab.run(None, None, "line.mp4", 2.5, [], _preset("completion"), 0.3, False))
    assert shots.value.message == "shots: a whole number from 0 to 64, not 2.5."
    assert stride.value.message.startswith("video_stride: a whole number") and stride.value.message.endswith(
        ", not 2.5.")


@pytest.mark.parametrize(("given", "said"), [
    (2.5, "No proposal #2.5: the proposals are numbered 0 to 4"),
    (-1, "No proposal #-1: the proposals are numbered 0 to 4"),
    (10**9, "No proposal #1000000000: the proposals are numbered 0 to 4"),
    (None, "No proposal selected: the proposals are numbered 0 to 4"),
])
def test_deciding_on_a_proposal_that_is_not_there_says_which_ones_are(given, said):
    review = {"doc": {"images": [{"proposals": [{"id": n} for n in range(5)]}]}, "accepted": [], "rejected": []}
    for decide in (completion_tab.accept, completion_tab.reject):
        with pytest.raises(gr.Error) as refused:
            decide(review, given, 0.3, 0)
        assert refused.value.message.startswith(said) and "pick one in the table" in refused.value.message
    assert review["accepted"] == review["rejected"] == []
