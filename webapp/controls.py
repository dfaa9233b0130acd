"""Gradio controls built from a tool's `Params` (via `tasks.registry.contract`): the default, range,
choices, label and help shown in the page are the ones the job checks, declared once in the engine."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import gradio as gr

from tasks.registry import contract


def spec(tool: str, name: str) -> Any:
    """The declaration of parameter `name` of `tool` (default, ge, le, choices, label, help)."""
    return contract(tool).Params.spec(name)


def _common(tool: str, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    declared = spec(tool, name)
    return {"value": declared.default, "label": declared.label, "info": declared.help or None, **overrides}


def number(tool: str, name: str, **overrides: Any) -> gr.Number:
    """A number field for parameter `name`. Give it no `precision`: Gradio would round 2.5 to 2 before the contract
    could refuse it, quoting what was typed."""
    declared = spec(tool, name)
    return gr.Number(**_common(tool, name, {"minimum": declared.ge, "maximum": declared.le, **overrides}))


def slider(tool: str, name: str, **overrides: Any) -> gr.Slider:
    declared = spec(tool, name)
    return gr.Slider(**_common(tool, name, {"minimum": declared.ge, "maximum": declared.le, **overrides}))


def dropdown(tool: str, name: str, **overrides: Any) -> gr.Dropdown:
    return gr.Dropdown(**_common(tool, name, {"choices": list(spec(tool, name).choices or ()), **overrides}))


def radio(tool: str, name: str, **overrides: Any) -> gr.Radio:
    return gr.Radio(**_common(tool, name, {"choices": list(spec(tool, name).choices or ()), **overrides}))


def checkbox(tool: str, name: str, **overrides: Any) -> gr.Checkbox:
    return gr.Checkbox(**_common(tool, name, overrides))


def textbox(tool: str, name: str, **overrides: Any) -> gr.Textbox:
    return gr.Textbox(**_common(tool, name, overrides))


def changed_settings(tool: str, values: dict[str, Any], left_out: Collection[str]) -> list[str]:
    """`values`' parameters that differ from `tool`'s defaults, but those `left_out`, labelled as `tool`'s form
    labels them ("Steps: 5"). The defaults are taken beside the `left_out` values, which the checks of some tools
    need (an insertion's prompt)."""
    params = contract(tool).Params
    current = params.from_dict(values).to_dict()  # as checked at submit (a JSON record has lists for tuples)
    defaults = params.from_dict({name: value for name, value in values.items() if name in left_out}).to_dict()
    return [f"{params.spec(name).label}: {value}" for name, value in current.items()
            if name not in left_out and value != defaults[name]]


def told_when_refused(event: Any, status: gr.Markdown, what: str) -> None:
    """After `event` is refused (a gr.Error, whose message then stays at the top of the page until closed),
    `status` says that `what` did not happen instead of what it said before (e.g. the last save's "Saved …")."""
    event.failure(lambda: f"⚠️ {what}: why is said at the top right of the page.", None, status,
                  api_visibility="private", show_progress="hidden")


def one_job_per_click(button: gr.Button, run: Callable[..., Any], inputs: Any, outputs: Any,
                      prepare: Callable[[Callable[..., Any]], Any] | None = None, **options: Any) -> Any:
    """Wire a tab's run button so that one click starts one job.

    Gradio uploads an event's files before it marks the event pending, so a double click on a tab with file
    inputs used to submit twice. The button is disabled by a file-less event at the click, runs `run` (which
    submits and follows the job: the tab shows one job at a time) and is enabled again when `run` ends, failed
    or not; `prepare(then)`, if given, chains an event that readies `inputs` in the page between. Returns the run
    event (its `api_name` is the tab's API endpoint, unchanged)."""
    locked = button.click(lambda: gr.Button(interactive=False), None, button, queue=False,
                          api_visibility="private")
    if prepare is not None:
        locked = prepare(locked.then)
    running = locked.then(run, inputs, outputs, **options)
    for ended in (running.then, running.failure):  # the page skips `then` after an error
        ended(lambda: gr.Button(interactive=True), None, button, queue=False, api_visibility="private")
    return running
