"""A job in the page's address: a tab that starts a job puts its id there (`?job=<id>`), so reloading the page, or
opening the link in another browser (signed in as someone who may see the job), re-attaches to the job.

The tab of the job's tool streams it again where the tab can (`follow_on_load`: the same stream as after a submit)
and shows the form the job was submitted with (`restore_on_load`: its input files and settings);
any other job opens in the Jobs tab, followed live (`open_in_jobs_tab`); a job the user may not see is "No job …",
as everywhere. The tab to show is picked when the page loads (`select_tab_on_load`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import gradio as gr
from gradio.components import Component
from gradio.context import Context, get_render_context
from gradio.events import Dependency

from tasks import client
from tasks.client import Job, JobNotFound
from webapp.controls import changed_settings
from webapp.views import owner_of

JOBS_TAB = "jobs"
IMAGE_PARAM = "image"  # the completion review's image, in the address beside its job
JOB_VIEW_PARAMS = (IMAGE_PARAM,)  # where the page was within the address's job: a new job drops them
SET_ADDRESS_JS = """(jobId) => {
    if (jobId) {
        const url = new URL(window.location.href);
        if (url.searchParams.get("job") !== jobId) {
            for (const name of JOB_VIEW_PARAMS) url.searchParams.delete(name);  // the previous job's
        }
        url.searchParams.set("job", jobId);
        window.history.replaceState(window.history.state, "", url);
    }
    return jobId;
}""".replace("JOB_VIEW_PARAMS", json.dumps(JOB_VIEW_PARAMS))

# per app being built: tool -> id of the top-level tab that re-attaches its jobs (the others open in the Jobs tab)
_ATTACHING: WeakKeyDictionary[gr.Blocks, dict[str, str]] = WeakKeyDictionary()


def _attaching() -> dict[str, str]:
    return _ATTACHING.setdefault(Context.root_block, {})


def _top_tab_id() -> str:
    """The id of the top-level tab being built (the outermost `gr.Tab` around the current block)."""
    block, top = get_render_context(), None
    while block is not None:
        if isinstance(block, gr.Tab):
            top = block
        block = block.parent
    if top is None or top.id is None:
        raise RuntimeError("follow_on_load is called while a tab with an id is built")
    return str(top.id)


def linked_ref(request: gr.Request | None) -> str | None:
    """The job the page's address names (`?job=`), as typed there."""
    params = getattr(request, "query_params", None) or {}
    return (params.get("job") or "").strip() or None


def linked_job(request: gr.Request | None) -> Job | None:
    """The job the page's address names, if the signed-in user may see it."""
    ref = linked_ref(request)
    try:
        return client.get(ref, owner_of(request)) if ref else None
    except JobNotFound:
        return None


def address_box() -> gr.Textbox:
    """A hidden box: each new value it gets becomes the page's `?job=` (in the browser, without a reload)."""
    box = gr.Textbox(visible=False)
    box.change(None, box, None, js=SET_ADDRESS_JS, api_visibility="private", show_progress="hidden")
    return box


def link(job_state: gr.State) -> None:
    """Put the id of each job a tab starts (the value of its `job_state`) in the page's address."""
    box = address_box()
    job_state.change(lambda job_id: job_id, job_state, box, api_visibility="private", show_progress="hidden")


def follow_on_load(job_state: gr.State, tools: tuple[str, ...], follow: Callable[[Job, gr.Progress], Iterator],
                   outputs: list[Component], accepts: Callable[[Job], bool] = lambda job: True,
                   buttons: Sequence[gr.Button] = (), **options: Any) -> Dependency:
    """A tab's hook: its jobs go in the address (`link`), and a page opened with a job of `tools` in its address
    (of those, the ones it `accepts`: a tab with two sections for one tool takes its own kind each) streams that
    job into `outputs` with `follow(job, progress)`, exactly as the tab does after a submit (so `outputs` should
    set `job_state`, for the tab's Cancel); `options` go to that stream's event, as to the tab's own. The tab's run
    `buttons` are disabled while it streams, as after a click (`one_job_per_click`): a reload mid-job enabled them,
    and a second click started a second job. Returns the stream's event, for what a tab does once it has ended."""
    link(job_state)
    _attaching().update(dict.fromkeys(tools, _top_tab_id()))
    box = gr.Textbox(visible=False)

    def pick(request: gr.Request) -> Any:
        job = linked_job(request)
        return job.id if job is not None and job.tool in tools and accepts(job) else gr.skip()

    def reattach(job_id: str, request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator:
        yield from follow(client.get(job_id, owner_of(request)), progress)

    gr.on(None, pick, None, box, api_visibility="private", show_progress="hidden")  # on page load
    for button in buttons:  # before the stream: the page runs one trigger's listeners in the order they were added
        box.change(lambda: gr.Button(interactive=False), None, button, queue=False, api_visibility="private")
    streaming = box.change(reattach, box, outputs, api_visibility="private", concurrency_limit=None, **options)
    for button in buttons:
        for ended in (streaming.then, streaming.failure):
            ended(lambda: gr.Button(interactive=True), None, button, queue=False, api_visibility="private")
    return streaming


def restore_on_load(tools: tuple[str, ...], form: Callable[[Job], list[Any]], controls: list[Component],
                    accepts: Callable[[Job], bool] = lambda job: True) -> Dependency:
    """A page opened with a job of `tools` in its address (of those, the ones it `accepts`, as `follow_on_load`)
    shows the inputs and settings that job was submitted with (`form(job)`: the values of `controls`), so a
    reload keeps the form, and changing one setting runs it again. Returns the event, for what a tab chains on."""

    def fill(request: gr.Request) -> Any:
        job = linked_job(request)
        return form(job) if job is not None and job.tool in tools and accepts(job) else [gr.skip()] * len(controls)

    return gr.on(None, fill, None, controls, api_visibility="private", show_progress="hidden")


def warn_unrestored(tool: str, params: dict[str, Any], shown: Collection[str], notes: Sequence[str] = ()) -> None:
    """Name in a warning that stays until closed what a restored form leaves out: `notes`, and the job's `params`
    that differ from `tool`'s defaults and have no control among `shown` (set through the API): a rerun from the
    page would differ unseen from the job."""
    hidden = changed_settings(tool, params, shown)
    told = [*notes, *([f"settings made outside this form, which a new run takes as their defaults: "
                       f"{', '.join(hidden)}"] if hidden else [])]
    if told:
        gr.Warning(html.escape(f"Not restored: {'; '.join(told)}."), duration=None)


def open_in_jobs_tab(job_box: gr.Textbox, open_job: Callable[..., Iterator], outputs: list[Component],
                     **options: Any) -> None:
    """The Jobs tab's hook: a page opened with a job no tab re-attaches (or one the user may not see) in its
    address puts it in `job_box` and opens it there with `open_job(ref, request)`, as its Open button does
    (`options` go to that event, as to the button's)."""
    attaching = _attaching()
    box = gr.Textbox(visible=False)

    def pick(request: gr.Request) -> Any:
        ref, job = linked_ref(request), linked_job(request)
        return gr.skip() if ref is None or (job is not None and job.tool in attaching) else (ref, ref)

    gr.on(None, pick, None, [job_box, box], api_visibility="private", show_progress="hidden")
    box.change(open_job, box, outputs, api_visibility="private", **options)


# Show the tab the box names ([id of its gr.Tabs, its label]) by clicking its button, or on a narrow screen the
# entry of the Tabs' "more" menu (waiting for the nested Tabs of a tab not shown yet to be drawn). Not an update of
# the gr.Tabs: Gradio 6.31 keeps every component an event updated among the page's loading statuses, and at each
# status message of any job stream (several a second) asks every component inside such a container for its value;
# an image editor among them answers by fetching and uploading its picture again.
SELECT_TAB_JS = """(choice) => {
    if (!choice) return choice;
    const [tabsId, label] = JSON.parse(choice);
    const started = Date.now();
    const select = () => {
        const bar = document.getElementById(tabsId)?.querySelector(".tab-wrapper");
        const button = bar && [...bar.querySelectorAll('[role="tablist"] button, .overflow-dropdown button')]
            .find((candidate) => candidate.textContent.trim() === label);
        if (button) {
            if (button.getAttribute("aria-selected") !== "true") button.click();
        } else if (Date.now() - started < 20000) {
            setTimeout(select, 100);
        }
    };
    select();
    return choice;
}"""


def _show_tab_on_load(tabs: gr.Tabs, tab_of: Callable[[gr.Request], str | None]) -> None:
    """When the page loads, show the tab of `tabs` whose id `tab_of(request)` gives (None: the page's default)."""
    if not tabs.elem_id:
        raise RuntimeError("a gr.Tabs whose tab is chosen on load needs an elem_id")
    labels = {str(tab.id): tab.label for tab in tabs.children if isinstance(tab, gr.Tab)}
    box = gr.Textbox(visible=False)

    def show(request: gr.Request) -> Any:
        tab = tab_of(request)
        return json.dumps([tabs.elem_id, labels[tab]]) if tab is not None else gr.skip()

    gr.on(None, show, None, box, api_visibility="private", show_progress="hidden")
    box.change(None, box, None, js=SELECT_TAB_JS, api_visibility="private", show_progress="hidden")


def select_section_on_load(tabs: gr.Tabs, section: Callable[[Job], str]) -> None:
    """Inside a tool's tab, show the section (`section(job)`: a sub-tab id) of the job in the page's address."""
    tools = [tool for tool, tab in _attaching().items() if tab == _top_tab_id()]

    def select(request: gr.Request) -> str | None:
        job = linked_job(request)
        return section(job) if job is not None and job.tool in tools else None

    _show_tab_on_load(tabs, select)


def select_tab_on_load(tabs: gr.Tabs) -> None:
    """Show the tab that re-attaches the job in the page's address: its tool's tab, or the Jobs tab."""
    attaching = _attaching()

    def select(request: gr.Request) -> str | None:
        if linked_ref(request) is None:
            return None
        job = linked_job(request)
        return attaching.get(job.tool, JOBS_TAB) if job is not None else JOBS_TAB

    _show_tab_on_load(tabs, select)
