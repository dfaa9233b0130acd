"""Jobs tab: recent jobs with live status; open one to see its results, or cancel it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from tasks import client
from tasks.client import JobNotFound
from tasks.registry import TOOLS, contract
from webapp import anomaly_tab, completion_tab, finetune_tab, insertion_tab
from webapp.views import JOB_TABLE_HEADERS, job_rows, owner_of, status_markdown, text

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


def open_job(job_id: str, request: gr.Request = None) -> tuple[str, Any, Any, Any]:
    job_id = (job_id or "").strip()
    if not job_id:
        return "Pick a job in the table or paste its id.", [], [], []
    try:
        job = client.get(job_id, owner_of(request))
    except JobNotFound as exc:
        return text(exc), [], [], []
    parameters = ", ".join(f"{text(parameter_label(job.tool, key))} = {text(value)}"
                           for key, value in job.params.items()) or "none"
    details = f"{status_markdown(job)}\n\nTool `{job.tool}` · parameters: {parameters} · inputs: {len(job.inputs)}"
    views, headers = RESULT_VIEWS.get(job.tool, (lambda job: ([], [], []), ["result"]))
    gallery, rows, files = views(job)
    headers = headers(job) if callable(headers) else headers
    return details, gallery, gr.Dataframe(value=rows, headers=headers), files


def cancel_job(job_id: str, request: gr.Request = None) -> str:
    try:
        return status_markdown(client.cancel((job_id or "").strip(), owner_of(request)))
    except JobNotFound as exc:
        return text(exc)


def pick(rows: Any, event: gr.SelectData) -> str:
    return rows.iloc[event.index[0], 0] if hasattr(rows, "iloc") else rows[event.index[0]][0]


def build() -> None:
    gr.Markdown("### Jobs\nRecent jobs of this installation, newest first; the list refreshes every 2 seconds.")
    table = gr.Dataframe(headers=JOB_TABLE_HEADERS, value=refresh, interactive=False, elem_id="jobs-table")
    with gr.Row():
        job_id = gr.Textbox(label="Job id", scale=3, elem_id="jobs-id")
        open_button = gr.Button("Open", scale=1, elem_id="jobs-open")
        cancel_button = gr.Button("Cancel job", variant="stop", scale=1, elem_id="jobs-cancel")
        refresh_button = gr.Button("Refresh", scale=1)
    details = gr.Markdown(elem_id="jobs-details")
    gallery = gr.Gallery(label="Results", columns=4, height="auto", object_fit="contain")
    rows = gr.Dataframe(label="Results table", headers=anomaly_tab.SCORE_HEADERS, interactive=False)
    files = gr.File(label="Downloads", file_count="multiple", interactive=False)
    timer = gr.Timer(2.0)
    timer.tick(refresh, None, table, show_progress="hidden", api_visibility="private")
    refresh_button.click(refresh, None, table, api_name="list_jobs")
    table.select(pick, [table], job_id, api_visibility="private")
    open_button.click(open_job, [job_id], [details, gallery, rows, files], api_name="open_job")
    cancel_button.click(cancel_job, [job_id], [details], api_name="cancel_job")
