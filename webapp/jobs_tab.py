"""Jobs tab: recent jobs with live status; open one (by its id or the first characters of it) to follow it live
and see its results, cancel it, name it, or delete it once it has ended."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from engine.errors import UserInputError
from engine.weights import human_size
from tasks import client
from tasks.client import Job, JobNotFound
from tasks.registry import TOOLS, contract
from webapp import anomaly_tab, completion_tab, finetune_tab, insertion_tab, reattach
from webapp.serving import forget_jobs
from webapp.views import (
    JOB_TABLE_HEADERS,
    follow,
    job_rows,
    nothing_to_cancel,
    owner_of,
    status_markdown,
    text,
)

# Fixed widths: shares of a phone's width gave each column a letter per line. On a phone (390 px) the id (in lines
# of a few characters), the tool and the status are in view, the rest scrolls sideways; status, progress and
# seconds stay on one line, a date-time on two; at desktop width the whole row is in view.
JOB_COLUMN_WIDTHS = ["100px", "120px", "100px", "90px", "300px", "110px", "90px", "180px"]
RESULT_VIEWS = {  # tool -> (views of a finished job, headers of its table, or a function of the job giving them)
    "anomaly": (anomaly_tab.result_views, anomaly_tab.SCORE_HEADERS),
    "anomaly_video": (anomaly_tab.result_views, anomaly_tab.SCORE_HEADERS),
    "anomaly_evaluate": (anomaly_tab.evaluation_views, anomaly_tab.METRIC_HEADERS),
    "completion": (completion_tab.result_views, completion_tab.IMAGE_HEADERS),
    "completion_evaluate": (completion_tab.evaluation_views, completion_tab.METRIC_HEADERS),
    "insertion": (insertion_tab.result_views, insertion_tab.RESULT_HEADERS),
    "finetune_classify": (finetune_tab.result_views, finetune_tab.METRIC_HEADERS),
    "finetune_detect": (finetune_tab.result_views, finetune_tab.DETECT_METRIC_HEADERS),
    "finetune_predict": (finetune_tab.result_views, finetune_tab.prediction_headers),
    "finetune_kshot": (finetune_tab.kshot_views, lambda job: finetune_tab.kshot_headers(job.params["task"])),
}

COLUMN_WIDTHS = {  # a results table's headers -> the widths its own tab gives it (none: Gradio's own)
    tuple(anomaly_tab.SCORE_HEADERS): anomaly_tab.SCORE_COLUMN_WIDTHS,
    tuple(insertion_tab.RESULT_HEADERS): insertion_tab.RESULT_COLUMN_WIDTHS,
    tuple(finetune_tab.PREDICTION_HEADERS): finetune_tab.PREDICTION_COLUMN_WIDTHS,
    tuple(finetune_tab.BOX_HEADERS): finetune_tab.BOX_COLUMN_WIDTHS,
    tuple(finetune_tab.DETECT_METRIC_HEADERS): finetune_tab.DETECT_METRIC_COLUMN_WIDTHS,
}


STATUS_LINES = {  # tool -> the status line its own tab shows (where the job stands, then thresholds, notes…)
    "anomaly": anomaly_tab.status_line,
    "anomaly_video": anomaly_tab.status_line,
    "anomaly_evaluate": anomaly_tab.evaluation_line,
    "completion": completion_tab.status_line,
    "insertion": insertion_tab.status_line,
    "finetune_classify": finetune_tab.training_line,
    "finetune_detect": finetune_tab.training_line,
    "finetune_kshot": finetune_tab.kshot_status,
    "finetune_predict": finetune_tab.prediction_line,
}


def parameter_label(tool: str, name: str) -> str:
    """A parameter's label as its tool declares it (the name itself for a tool or a record without one)."""
    if tool not in TOOLS:
        return name
    params = contract(tool).Params
    return params.spec(name).label if name in params.__dataclass_fields__ else name


def refresh(request: gr.Request = None) -> list[list[str]]:
    """The signed-in user's recent jobs (everyone's on a local app without sign-in)."""
    return job_rows(client.list_jobs(limit=50, owner=owner_of(request)))


def drawn_summary(job: Job) -> str:
    """A completion job's drawn boxes by class and image, not their records."""
    return ", ".join(f"{box['category']} on {box['image']}" for box in job.params.get("drawn_boxes") or []) or "none"


SUMMARIES = {("finetune_kshot", "training"): finetune_tab.training_summary,  # (tool, parameter) -> its value in words
             ("completion", "drawn_boxes"): drawn_summary}


def job_views(job: Job) -> tuple[str, Any, Any, Any]:
    """(details, gallery, table, downloads) of a job: where it stands and, once it has ended, its results."""
    shown = {key: SUMMARIES[job.tool, key](job) if (job.tool, key) in SUMMARIES else value
             for key, value in job.params.items()}
    parameters = ", ".join(f"{text(parameter_label(job.tool, key))} = {text(value)}"
                           for key, value in shown.items()) or "none"
    status_line = STATUS_LINES.get(job.tool, status_markdown)
    details = f"{status_line(job)}\n\nTool `{job.tool}` · parameters: {parameters} · inputs: {len(job.inputs)}"
    views, headers = RESULT_VIEWS.get(job.tool, (lambda job: ([], [], []), ["result"]))
    gallery, rows, files = views(job) if job.status.final else ([], [], [])
    headers = headers(job) if callable(headers) else headers
    table = gr.Dataframe(value=rows, headers=headers, column_widths=COLUMN_WIDTHS.get(tuple(headers)))
    return details, gallery, table, files


_FOLLOWED: dict[str, object] = {}  # browser session -> the Open following a job there now (an older one stops)


def open_job(job_id: str, request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
    """Open a job by its id or the first characters of it (4 or more, as shown), and follow it live until it ends:
    its status and progress, then its results. Opening another job in the same page stops following this one."""
    job_id = (job_id or "").strip()
    if not job_id:
        yield "Pick a job in the table or paste its id.", [], [], []
        return
    try:
        job = client.get(job_id, owner_of(request))
    except JobNotFound as exc:
        yield text(exc), [], [], []
        return
    session, token = getattr(request, "session_hash", None), object()
    _FOLLOWED[session] = token
    try:
        for job in follow(job, progress):  # noqa: B020 - the last record is the final one
            if _FOLLOWED.get(session) is not token:
                return
            yield job_views(job)
    finally:
        if _FOLLOWED.get(session) is token:
            del _FOLLOWED[session]


def full_id(job_id: str, request: gr.Request = None) -> Any:
    """The full id of the job being opened, for the page's address (nothing for one that is not found)."""
    try:
        return client.get((job_id or "").strip(), owner_of(request)).id
    except JobNotFound:
        return gr.skip()


def cancel_job(job_id: str, request: gr.Request = None) -> str:
    try:
        job = client.get((job_id or "").strip(), owner_of(request))
        if job.status.final:
            return status_markdown(job) + nothing_to_cancel(job)
        return status_markdown(client.cancel(job.id, owner_of(request)))
    except JobNotFound as exc:
        return text(exc)


def rename_job(job_id: str, name: str, request: gr.Request = None) -> tuple[str, list[list[str]]]:
    """Name one's own job (blank: no name): (its status line, which shows the name; the refreshed table)."""
    try:
        job = client.rename((job_id or "").strip(), name, owner_of(request))
    except (JobNotFound, ValueError) as exc:
        return f"⚠️ {text(exc)}", refresh(request)
    return status_markdown(job), refresh(request)


def ask_delete(job_id: str, request: gr.Request = None) -> tuple[Any, str, Any]:
    """The confirmation a delete needs (which job, what goes with it), or why this job cannot be deleted:
    (the confirmation row, its text, the details line)."""
    try:
        job = client.get((job_id or "").strip(), owner_of(request))
    except JobNotFound as exc:
        return gr.Row(visible=False), "", text(exc)
    if not job.status.final:
        return (gr.Row(visible=False), "",
                f"⚠️ Job `{job.id[:8]}` is {job.status.value}: cancel it first, then delete it.")
    named = f" ({text(job.name)})" if job.name else ""
    return (gr.Row(visible=True), f"Delete job `{job.id[:8]}`{named}, {job.tool}, with its input files and results? "
            "This cannot be undone (a model it saved stays in *Use a model*).", "")  # an earlier warning is stale


def delete_job(job_id: str, request: gr.Request = None) -> tuple[Any, ...]:
    """Delete one's own finished job and what it stored: (details, gallery, results table, downloads, job id, jobs
    table, the confirmation row hidden)."""
    owner = owner_of(request)
    try:
        job, freed = client.delete((job_id or "").strip(), owner)
    except (JobNotFound, UserInputError) as exc:
        return f"⚠️ {text(exc)}", *[gr.skip()] * 4, refresh(request), gr.Row(visible=False)
    forget_jobs([job.id])  # the copies handed out for its pages go too: no link serves them any more
    return (f"Deleted job `{job.id[:8]}` and its files ({human_size(freed)} freed).", [], [], [], "",
            refresh(request), gr.Row(visible=False))


def pick(rows: Any, event: gr.SelectData) -> tuple[str, str]:
    """A clicked row's job id and name."""
    row = list(rows.iloc[event.index[0]]) if hasattr(rows, "iloc") else rows[event.index[0]]
    return row[0], row[JOB_TABLE_HEADERS.index("name")]


def build() -> None:
    gr.Markdown("### Jobs\nRecent jobs, newest first (with accounts, your own only); the list refreshes every 2 "
                "seconds. Open a job by its id or its first characters (as shown beside *job*, e.g. `16d22185`).")
    table = gr.Dataframe(headers=JOB_TABLE_HEADERS, value=refresh, interactive=False, elem_id="jobs-table", wrap=True,
                         column_widths=JOB_COLUMN_WIDTHS)
    with gr.Row():
        job_id = gr.Textbox(label="Job id", scale=3, elem_id="jobs-id")
        open_button = gr.Button("Open", scale=1, elem_id="jobs-open")
        cancel_button = gr.Button("Cancel job", variant="stop", scale=1, elem_id="jobs-cancel")
        delete_button = gr.Button("Delete job", scale=1, elem_id="jobs-delete")
        refresh_button = gr.Button("Refresh", scale=1)
    with gr.Row(visible=False, elem_id="jobs-delete-confirm") as confirm:
        confirm_text = gr.Markdown()
        confirm_button = gr.Button("Delete", variant="stop", scale=0, elem_id="jobs-delete-yes")
        keep_button = gr.Button("Keep", scale=0, elem_id="jobs-delete-no")
    with gr.Row():
        name = gr.Textbox(label="Name", placeholder="e.g. line 3, night shift", scale=3, elem_id="jobs-name")
        rename_button = gr.Button("Rename", scale=1, elem_id="jobs-rename")
    details = gr.Markdown(elem_id="jobs-details")
    gallery = gr.Gallery(label="Results", columns=4, height="auto", object_fit="contain")
    rows = gr.Dataframe(label="Results table", headers=anomaly_tab.SCORE_HEADERS, interactive=False, wrap=True,
                        column_widths=anomaly_tab.SCORE_COLUMN_WIDTHS, elem_id="jobs-results-table")
    files = gr.File(label="Downloads", file_count="multiple", interactive=False)
    timer = gr.Timer(2.0)
    timer.tick(refresh, None, table, show_progress="hidden", api_visibility="private")
    refresh_button.click(refresh, None, table, api_name="list_jobs")
    table.select(pick, [table], [job_id, name], api_visibility="private")
    opened = [details, gallery, rows, files]
    following = {"concurrency_limit": None, "trigger_mode": "multiple",  # a follow lasts as long as its job
                 "show_progress_on": gallery}  # the status line stays readable
    open_button.click(open_job, [job_id], opened, api_name="open_job", **following)
    open_button.click(full_id, [job_id], reattach.address_box(), api_visibility="private", show_progress="hidden")
    cancel_button.click(cancel_job, [job_id], [details], api_name="cancel_job")
    rename_button.click(rename_job, [job_id, name], [details, table], api_name="rename_job")
    delete_button.click(ask_delete, [job_id], [confirm, confirm_text, details], api_visibility="private")
    confirm_button.click(delete_job, [job_id], [details, gallery, rows, files, job_id, table, confirm],
                         api_name="delete_job")
    keep_button.click(lambda: gr.Row(visible=False), None, [confirm], api_visibility="private")
    job_id.change(lambda: gr.Row(visible=False), None, [confirm], api_visibility="private")  # it asked of another job
    reattach.open_in_jobs_tab(job_id, open_job, opened, **following)
