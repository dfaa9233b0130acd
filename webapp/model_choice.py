"""A tool's model choice: the preset dropdown with its "not installed" marks, the notice under it while the chosen
preset's weights are missing, and that notice's "Download weights" job.

The marks are the loader's own torch-free check, read again on every page load and tab switch (weights installed
while the app runs are seen without a restart) and right after a download from the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from engine.presets import demo_for, get_preset
from engine.weights import human_size
from tasks import client
from tasks.client import Status
from webapp.saved_items import refresh_of, refresh_on_load
from webapp.views import follow, preset_choices, status_markdown, submit

DOWNLOAD_TOOL = "weights_download"


def preset_dropdown(tool: str, elem_id: str, label: str = "Model",
                    refresh: Callable[[gr.Request], Any] | None = None, **options: Any) -> gr.Dropdown:
    """A tool's model choice, real weights first and selected (labels say when weights are random or not
    installed). Its choices are filled again on page load and tab switch with `refresh` (default: the tool's
    presets; a tab that also offers saved models passes the function that lists both); `options` go to the
    Dropdown."""
    choices = preset_choices(tool)
    dropdown = gr.Dropdown(label=label, choices=choices, value=choices[0][1], elem_id=elem_id, **options)
    refresh_on_load(refresh or (lambda request=None: gr.Dropdown(choices=preset_choices(tool))), dropdown,
                    api_visibility="private")
    return dropdown


def ui_downloads_allowed() -> bool:
    """Whether the page offers "Download weights": the machine may reach the hub (HF_HUB_OFFLINE unset) and
    FEWSHOT_UI_DOWNLOADS allows it: `on`, `off`, or `auto` (the default: on only without accounts, so on a shared
    instance no user fills its disk unless whoever runs it says so)."""
    setting = os.environ.get("FEWSHOT_UI_DOWNLOADS", "auto").strip().lower()
    if setting not in ("on", "off", "auto"):
        setting = "auto"
    accounts = bool(os.environ.get("FEWSHOT_AUTH") or os.environ.get("FEWSHOT_AUTH_FILE"))
    return client.hub_downloads_allowed() and (setting == "on" or (setting == "auto" and not accounts))


def weights_notice_html(tool: str, choice: str | None) -> str:
    """What to do when the chosen preset's weights are missing, in plain words, with the technical detail folded
    away; empty when they are there (or the choice is no preset, e.g. a saved model)."""
    presets = client.presets(tool)
    chosen = next((p for p in presets if p["name"] == choice), None)
    if chosen is None or chosen["installed"]:
        return ""
    demo = demo_for(get_preset(chosen["name"]))  # the one of the chosen model's method, if it has one
    hub, here = client.hub_downloads_allowed(), ui_downloads_allowed()
    if here:
        consequence = "Download them here with <strong>Download weights</strong> (a job with its progress)."
    elif hub:
        consequence = "The first job with it downloads them first, which can take a long time."
    else:
        consequence = "A job with it would fail."
    try_demo = (f"To try the tool now, pick the demo model “{html.escape(demo.label)}”. " if demo else "")
    files = "".join(f"<li>{html.escape(repo)}: {html.escape(names)}</li>" for repo, names in chosen["files"])
    return (
        f'<div class="weights-notice" style="border:1px solid #d97706;border-radius:8px;padding:10px 14px;'
        f'background:rgba(217,119,6,0.08)">'
        f"<p><strong>The weights of “{html.escape(chosen['label'])}” are not installed on this machine.</strong> "
        f"{consequence} {try_demo}Otherwise whoever runs this app installs its weights: "
        f"<code>make weights</code> on a machine with internet, then copies the models folder here.</p>"
        f"<details><summary>Details</summary>"
        f"<p>Looked for, on the machine that runs this app:</p><ul>"
        f"<li>in the models folder (<code>FEWSHOT_MODELS_DIR</code>), a folder named "
        f"<code>{html.escape(chosen['name'])}</code>;</li>"
        f"<li>in the Hugging Face cache (<code>HF_HOME</code>), these files of these hub repositories:<ul>{files}"
        f"</ul></li></ul>"
        f"<p><code>HF_HUB_OFFLINE</code> is "
        f"{'not set: jobs may download' if hub else 'set: jobs download nothing'}; downloads from the page are "
        f"{'on' if here else 'off'} (<code>FEWSHOT_UI_DOWNLOADS</code>). Command: "
        f"<code>python -m engine weights --preset {html.escape(chosen['name'])}</code> "
        f"(<code>--dry-run</code> lists the files and sizes).</p></details></div>"
    )


def weights_notice(tool: str, dropdown: gr.Dropdown) -> gr.Column:
    """The notice under a model dropdown: shown while the chosen preset is not installed, checked again on each
    choice; with "Download weights" where downloads from the page are allowed. After a download the notice goes
    and the dropdown's marks are read again."""
    notice = weights_notice_html(tool, dropdown.value)
    with gr.Column(visible=bool(notice), elem_id=f"{dropdown.elem_id}-weights") as block:
        message = gr.HTML(notice, elem_id=f"{dropdown.elem_id}-weights-notice")
        button = gr.Button("Download weights", size="sm", visible=ui_downloads_allowed(),
                           elem_id=f"{dropdown.elem_id}-download")
    status = gr.Markdown(elem_id=f"{dropdown.elem_id}-download-status")  # stays when the notice goes
    refresh = refresh_of(dropdown)

    def update(choice: str | None) -> Any:
        value = weights_notice_html(tool, choice)
        return gr.Column(visible=bool(value)), value, gr.Button(visible=ui_downloads_allowed())

    def download(choice: str | None, request: gr.Request = None,
                 progress: gr.Progress = gr.Progress()) -> Iterator[Any]:
        if not ui_downloads_allowed():
            raise gr.Error("Downloads from the page are off on this instance; ask whoever runs it to install "
                           "the weights.")
        job = submit(DOWNLOAD_TOOL, {"preset": choice}, {}, request)
        for job in follow(job, progress):  # noqa: B020 - the last record is the final one
            yield status_markdown(job), gr.skip(), gr.skip(), gr.skip()
        if job.status is Status.SUCCEEDED:
            value = weights_notice_html(tool, choice)
            files = job.result["files"]
            done = (f"{status_markdown(job)} · installed: {files} file{'s' if files != 1 else ''}, "
                    f"{human_size(job.result['size_bytes'])}")
            yield done, value, gr.Column(visible=bool(value)), refresh(request)

    gr.on([dropdown.change], update, dropdown, [block, message, button], queue=False, show_progress="hidden",
          api_visibility="private")
    gr.on(None, update, dropdown, [block, message, button], queue=False, show_progress="hidden",
          api_visibility="private")  # on page load: weights installed, or the machine's setting changed, since
    button.click(download, dropdown, [status, message, block, dropdown], api_visibility="private",
                 concurrency_limit=None, show_progress_on=[status])  # a refusal's badge would hide the list
    return block
