"""What the page fills in for its user when it loads comes in one event: one page-load request instead of one per
part (38 of them kept a loaded server busy for seconds after the page showed), and a part that cannot be filled
leaves the others filled."""

from __future__ import annotations

import gradio as gr

from webapp.page_load import fill_on_load, install_page_load


def load_events(demo: gr.Blocks) -> list:
    return [fn for fn in demo.fns.values() if any(event == "load" for _, event in fn.targets)]


def test_the_app_fills_its_page_in_one_load_event():
    from webapp.app import build_app

    demo = build_app()
    (load,) = load_events(demo)
    filled = {block.elem_id for block in load.outputs}
    for part in ("anomaly-preset", "jobs-table", "finetune-name", "insertion-box-message"):  # model list, jobs, forms
        assert part in filled


def test_a_part_that_cannot_be_filled_leaves_the_others_filled(caplog):
    with gr.Blocks() as demo:
        name, broken, first, second = gr.Textbox(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        fill_on_load(lambda request: f"for {request}", name)
        fill_on_load(lambda request: 1 / 0, broken)
        fill_on_load(lambda request: gr.skip(), [first, second])  # one skip for all its components
        fill_on_load(lambda request: ["a", "b"], (first, second))
        install_page_load()
    (load,) = load_events(demo)
    assert load.outputs == [name, broken, first, second, first, second]
    assert load.fn("alice") == ["for alice", gr.skip(), gr.skip(), gr.skip(), "a", "b"]
    assert "could not fill" in caplog.text and "ZeroDivisionError" in caplog.text
