"""What the page fills in for its user when it loads: one request per tab.

The built page is the same for everyone; what depends on the signed-in user, the page's address or the machine
(model lists and their "not installed" marks, saved sets and models, a linked job's stream, form and tab) is filled
when it loads. Each part registers its filler here while the page is built, and `install_page_load` makes the
fillers of each top-level tab one page-load event: 6 events where one per filler (38) kept a loaded server busy
for seconds after the page showed.

No filler may fill a `gr.State`: while a page-load event with a State among its outputs was still open (a loaded
server), Gradio 6.31's page dropped updates other events sent meanwhile (a completion run's counts line stayed
empty). A value a form restores lives in a hidden component instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import gradio as gr
from gradio.blocks import Block
from gradio.context import Context, get_render_context

log = logging.getLogger(__name__)

Filler = Callable[[gr.Request], Any]

# per app being built: (filler, the components it fills, whether it returns a sequence, the top-level tab it is
# in), in the order they came
_FILLERS: WeakKeyDictionary[gr.Blocks, list[tuple[Filler, list[Block], bool, str | None]]] = WeakKeyDictionary()


def tab_being_built() -> str | None:
    """The id of the top-level tab being built (the outermost `gr.Tab` around the current block), if any."""
    block, top = get_render_context(), None
    while block is not None:
        if isinstance(block, gr.Tab):
            top = block
        block = block.parent
    return None if top is None or top.id is None else str(top.id)


def fill_on_load(fill: Filler, outputs: Block | Sequence[Block]) -> None:
    """Fill `outputs` with `fill(request)` when the page loads: the value or update of one component, or for a
    sequence of them a sequence (or one `gr.skip()` for all)."""
    many = isinstance(outputs, (list, tuple))
    listed = list(outputs) if many else [outputs]
    if any(isinstance(component, gr.State) for component in listed):
        raise TypeError(f"{fill.__qualname__} fills a gr.State on page load; use a hidden component (see "
                        "webapp/page_load.py)")
    _FILLERS.setdefault(Context.root_block, []).append((fill, listed, many, tab_being_built()))


def install_page_load() -> None:
    """Make the fillers registered while the current page was built its page-load events, one per top-level tab
    (call it last)."""
    by_tab: dict[str | None, list[tuple[Filler, list[Block], bool]]] = {}
    for fill, outputs, many, tab in _FILLERS.pop(Context.root_block, []):
        by_tab.setdefault(tab, []).append((fill, outputs, many))
    for fillers in by_tab.values():
        _load_event(fillers)


def _load_event(fillers: list[tuple[Filler, list[Block], bool]]) -> None:
    outputs = list({id(c): c for _, filled, _ in fillers for c in filled}.values())  # each once: the page pairs
    position = {id(c): n for n, c in enumerate(outputs)}  # an event's values with its outputs as a set

    def load(request: gr.Request) -> Any:
        values: list[Any] = [gr.skip()] * len(outputs)
        for fill, filled, many in fillers:
            try:
                value = fill(request)
            except Exception:  # one part that cannot be filled (the job store unreachable) leaves the rest filled
                log.exception("the page could not fill %s on load", fill.__qualname__)
                value = gr.skip()
            if not many:
                value = [value]
            elif not isinstance(value, (list, tuple)):
                value = [value] * len(filled)
            for component, update in zip(filled, value, strict=True):
                values[position[id(component)]] = _merged(values[position[id(component)]], update)
        return values if len(values) > 1 else values[0]  # Gradio takes one output's value as it is

    gr.on(None, load, None, outputs, show_progress="hidden", api_visibility="private")


def _merged(earlier: Any, later: Any) -> Any:
    """Two fillers' values for one component as one update (a model list's choices and a restored form's pick)."""
    if _skips(later):
        return earlier
    if _skips(earlier):
        return later
    return {**_as_update(earlier), **_as_update(later)}


def _skips(value: Any) -> bool:
    return isinstance(value, dict) and value == gr.skip()


def _as_update(value: Any) -> dict[str, Any]:
    if isinstance(value, Block):
        return {**value.constructor_args, "__type__": "update"}
    if isinstance(value, dict) and value.get("__type__") == "update":
        return value
    return {"value": value, "__type__": "update"}
