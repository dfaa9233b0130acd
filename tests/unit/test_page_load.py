"""What the page fills in for its user when it loads comes in one event per tab instead of one per part (38 of them
kept a loaded server busy for seconds after the page showed); a part that cannot be filled leaves the others
filled; two parts filling one component make one update; no part fills a State (Gradio's page then dropped other
events' updates while the page-load event was open)."""

from __future__ import annotations

import gradio as gr
import pytest

from webapp.page_load import fill_on_load, install_page_load


def load_events(demo: gr.Blocks) -> list:
    return [fn for fn in demo.fns.values() if any(event == "load" for _, event in fn.targets)]


def test_the_app_fills_its_page_in_one_load_event_per_tab():
    from webapp.app import build_app

    demo = build_app()
    loads = load_events(demo)
    assert len(loads) == 6  # four tool tabs, the Jobs tab, the page's tab choice
    filled = {block.elem_id for load in loads for block in load.outputs}
    for part in ("anomaly-preset", "jobs-table", "finetune-name", "insertion-box-message"):  # model list, jobs, forms
        assert part in filled
    assert not any(isinstance(block, gr.State) for load in loads for block in load.outputs)


def test_a_part_that_cannot_be_filled_leaves_the_others_filled(caplog):
    with gr.Blocks() as demo:
        name, broken, first, second = gr.Textbox(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        fill_on_load(lambda request: f"for {request}", name)
        fill_on_load(lambda request: 1 / 0, broken)
        fill_on_load(lambda request: gr.skip(), [first, second])  # one skip for all its components
        fill_on_load(lambda request: ["a", "b"], (first, second))
        install_page_load()
    (load,) = load_events(demo)
    assert load.outputs == [name, broken, first, second]
    assert load.fn("alice") == ["for alice", gr.skip(), "a", "b"]
    assert "could not fill" in caplog.text and "ZeroDivisionError" in caplog.text


def test_two_parts_filling_one_component_make_one_update():
    with gr.Blocks() as demo:
        model = gr.Dropdown(choices=["old"])
        fill_on_load(lambda request: gr.Dropdown(choices=["tiny", "real"]), model)  # the list, for this user
        fill_on_load(lambda request: "tiny", model)  # a restored form's pick
        install_page_load()
    (load,) = load_events(demo)
    assert load.outputs == [model]
    update = load.fn(None)  # one output: its value as it is (Gradio would read a list as the value)
    assert update["__type__"] == "update" and update["choices"] == ["tiny", "real"] and update["value"] == "tiny"


def test_no_part_fills_a_state():
    with gr.Blocks(), pytest.raises(TypeError, match=r"gr\.State"):
        fill_on_load(lambda request: [], gr.State([]))


def test_every_page_load_event_answers_what_gradio_accepts(tmp_path):
    """Each event's values go through Gradio's own output processing, for a page opened with a job in its address
    (an event with one output handed Gradio a list: the page's tab choice failed on every linked page)."""
    import asyncio
    from types import SimpleNamespace

    from gradio.state_holder import SessionState

    from tests.unit.test_form_restore import stored_job
    from webapp.app import build_app

    job = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9"}, {"image": ["a.png"]}, "alice")
    demo = build_app()
    for opened in ({"job": job.id}, {}):
        request = SimpleNamespace(query_params=opened, username="alice")
        for load in load_events(demo):
            asyncio.run(demo.postprocess_data(load, load.fn(request), SessionState(demo)))
