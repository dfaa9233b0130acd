"""What the page fills in for its user when it loads, in one request.

The built page is the same for everyone; what depends on the signed-in user, the page's address or the machine
(model lists and their "not installed" marks, saved sets and models, a linked job's stream, form and tab) is filled
when it loads. Each part registers its filler here while the page is built, and `install_page_load` makes them one
page-load event: one round trip, where one event per filler (38) kept a loaded server busy for seconds after the page
showed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import gradio as gr
from gradio.blocks import Block
from gradio.context import Context

log = logging.getLogger(__name__)

Filler = Callable[[gr.Request], Any]

# per app being built: (filler, the components it fills), in the order they were registered
_FILLERS: WeakKeyDictionary[gr.Blocks, list[tuple[Filler, list[Block]]]] = WeakKeyDictionary()


def fill_on_load(fill: Filler, outputs: Block | Sequence[Block]) -> None:
    """Fill `outputs` with `fill(request)` when the page loads: their values or updates, one for one component, a
    sequence for several (or one `gr.skip()` for all)."""
    listed = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    _FILLERS.setdefault(Context.root_block, []).append((fill, listed))


def install_page_load() -> None:
    """Make the fillers registered while the current page was built its one page-load event (call it last)."""
    fillers = _FILLERS.pop(Context.root_block, [])

    def load(request: gr.Request) -> list[Any]:
        values: list[Any] = []
        for fill, outputs in fillers:
            try:
                value = fill(request)
            except Exception:  # one part that cannot be filled (the job store unreachable) leaves the rest filled
                log.exception("the page could not fill %s on load", fill.__qualname__)
                value = gr.skip()
            if len(outputs) == 1:
                values.append(value)
            else:
                values.extend(value if isinstance(value, (list, tuple)) else [value] * len(outputs))
        return values

    gr.on(None, load, None, [c for _, outputs in fillers for c in outputs], show_progress="hidden",
          api_visibility="private")
