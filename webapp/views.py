"""Text and tables shared by the tool tabs and the Jobs tab."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from engine.anomaly.common import SCORE_DECIMALS, score_text
from tasks import client
from tasks.client import Job, Status
from webapp.latest import LatestPerOwner

POLL_S = 0.3
_MARKDOWN_ACTIVE = re.compile(r"([\\`*\[\]])")


def text(value: Any) -> str:
    """User text (names, prompts, messages that quote them) made inert inside Markdown: HTML escaped, and
    the characters that open code spans, emphasis, links and images backslash-escaped, so a backtick, a
    link or `<img src=x>` shows as typed."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", html.escape(str(value), quote=False))


def fixed_decimals(rows: list[list[Any]]) -> dict[str, Any]:
    """`rows` as a table's value whose fractional numbers (scores, probabilities, metrics) all show SCORE_DECIMALS
    decimals: Gradio drops a number's trailing zeros, and 0.729 stood beside 0.7225. Each such cell keeps its number
    (rounded as shown), so sorting the column orders numbers, and the API returns numbers; other cells show as
    they are (an empty display value is Gradio's "show the cell itself")."""
    data = [[round(v, SCORE_DECIMALS) if isinstance(v, float) else v for v in row] for row in rows]
    shown = [[score_text(v) if isinstance(v, float) else None for v in row] for row in data]
    return {"data": data, "metadata": {"display_value": shown, "styling": [[""] * len(row) for row in data]}}


SKIPPED_SHOWN = 20


def skipped_markdown(skipped: list[dict[str, str]], rest_in: str = "") -> str:
    """A result's skipped inputs for its status line: the first SKIPPED_SHOWN, then how many more (`rest_in` says
    where all are); a zip of thousands of unreadable images made a status line of thousands of paragraphs."""
    if not skipped:
        return ""
    line = f"\n\n**Skipped ({len(skipped)}):**\n" + "\n".join(f"- {text(s['error'])}" for s in skipped[:SKIPPED_SHOWN])
    if len(skipped) > SKIPPED_SHOWN:
        line += f"\n- … and {len(skipped) - SKIPPED_SHOWN} more" + (f" ({rest_in})" if rest_in else "")
    return line


def notes_markdown(result: dict[str, Any]) -> str:
    """A result's notes (e.g. a TIFF of which only the first page was used), one paragraph each, as every tab's status
    line ends."""
    return "".join(f"\n\n⚠️ {text(n)}" for n in result.get("notes", []))


def code(value: Any) -> str:
    """User text as a Markdown code span, shown verbatim: the fence is longer than any backtick run inside."""
    inner = str(value).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", inner)), default=0) + 1)
    pad = " " if inner.startswith("`") or inner.endswith("`") else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


_ICONS = {
    Status.QUEUED: "⏳",
    Status.RUNNING: "⚙️",
    Status.SUCCEEDED: "✅",
    Status.FAILED: "❌",
    Status.CANCELLED: "⏹️",
}


FRAME_WAIT_S = 120  # a quick job: waits only behind other quick jobs
JOB_KINDS = {  # what each tool's job is called where the page says what runs ahead of a queued job
    "anomaly": ("inspection", "inspections"),
    "anomaly_video": ("video inspection", "video inspections"),
    "anomaly_evaluate": ("anomaly evaluation", "anomaly evaluations"),
    "completion": ("annotation completion", "annotation completions"),
    "completion_evaluate": ("completion evaluation", "completion evaluations"),
    "insertion": ("insertion", "insertions"),
    "video_frame": ("video frame preparation", "video frame preparations"),
    "finetune_classify": ("classifier training", "classifier trainings"),
    "finetune_detect": ("detector training", "detector trainings"),
    "finetune_kshot": ("K-shot evaluation", "K-shot evaluations"),
    "finetune_predict": ("prediction", "predictions"),
    "weights_download": ("weights download", "weights downloads"),
}


def kinds_text(tools: list[str] | tuple[str, ...]) -> str:
    """'1 classifier training, 2 inspections': jobs counted by kind, kinds in order of first appearance."""
    counts: dict[str, int] = {}
    for tool in tools:
        counts[tool] = counts.get(tool, 0) + 1
    return ", ".join(f"{n} {JOB_KINDS.get(tool, (tool, tool))[n > 1]}" for tool, n in counts.items())


def queue_text(position: client.QueuePosition) -> str:
    """Where a queued job stands: 'next in line' (then what runs now, if anything), or how many jobs run before
    it and of which kinds, those running now first."""
    if not position.ahead:
        return "next in line" + (f" · behind {kinds_text(position.running)}" if position.running else "")
    before = (*position.running, *position.ahead)
    return f"{len(before)} job{'s' if len(before) > 1 else ''} ahead: {kinds_text(before)}"


def status_markdown(job: Job) -> str:
    """One block that says where a job stands (for a queued one, what runs before it), and why it failed if it
    did."""
    line = f"{_ICONS[job.status]} **{job.status.value.capitalize()}** · job `{job.id[:8]}`"
    if job.name:
        line += f" · **{text(job.name)}**"
    if job.status is Status.RUNNING:
        line += f" · {job.progress:.0%} · {text(job.message)}"
    elif job.status is Status.QUEUED:
        if job.message != Job.message:  # e.g. sent again after a restart; the default only says it waits
            line += f" · {text(job.message)}"
        line += f" · {queue_text(client.queue_position(job))}"
    if job.finished_at and job.started_at:
        line += f" · {job.finished_at - job.started_at:.1f} s"
    if job.error:
        line += f"\n\n**What went wrong:** {text(job.error)}"
    return line


def progress_text(job: Job) -> str:
    """The line over a tab's progress bar: what the job does, or for a queued one what runs before it."""
    return f"Queued · {queue_text(client.queue_position(job))}" if job.status is Status.QUEUED else job.message


def timestamp(seconds: float | None) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else ""


JOB_TABLE_HEADERS = ["job", "tool", "status", "progress", "message", "created", "seconds", "name"]


def job_rows(jobs: list[Job]) -> list[list[str]]:
    rows = []
    for job in jobs:
        seconds = f"{job.finished_at - job.started_at:.1f}" if job.finished_at and job.started_at else ""
        message = job.error or job.message
        rows.append([job.id, job.tool, job.status.value, f"{job.progress:.0%}", message[:160],
                     timestamp(job.created_at), seconds, job.name or ""])
    return rows


NOT_INSTALLED = "not installed"


def preset_choices(tool: str) -> list[tuple[str, str]]:
    """(label, name) of a tool's presets; a preset whose weights are not on this machine says so first in its
    label (a closed dropdown shows the start of a long label)."""
    return [(p["label"] if p["installed"] else f"({NOT_INSTALLED}) {p['label']}", p["name"])
            for p in client.presets(tool)]


def owner_of(request: gr.Request | None) -> str | None:
    """The signed-in user of a request (None when the app runs without sign-in: one local user)."""
    return getattr(request, "username", None) or None


def submit(tool: str, params: dict[str, Any], files: client.Files, request: gr.Request | None = None) -> Job:
    """Submit a job as the signed-in user; bad input, a full queue or an unreachable queue becomes a
    message on the page."""
    try:
        return client.submit(tool, params, files, owner=owner_of(request))
    except (client.QueueUnavailable, ValueError) as exc:
        raise gr.Error(str(exc)) from None


def video_frame(video: str, index: float, request: gr.Request | None = None) -> str:
    """A frame of an uploaded video to draw on, as a copy served to its user: decoded by a quick job in a worker
    (the web process decodes no video: a file that crashes the decoder takes down a worker, not the app)."""
    from webapp.serving import job_file

    job = client.wait(submit("video_frame", {"frame": index}, {"video": [video]}, request).id, timeout=FRAME_WAIT_S)
    if job.status is not Status.SUCCEEDED:
        raise gr.Error(job.error or f"The video's frame was not decoded within {FRAME_WAIT_S} s; try again.")
    return job_file(job, "frame.png")


def nothing_to_cancel(job: Job) -> str:
    """Said under an ended job's status line when Cancel is pressed (the line alone looked like no answer)."""
    return f"\n\nNothing to cancel: job {job.id[:8]} had already ended ({job.status.value})."


def cancelling(status_line: Callable[[Job], str] = status_markdown) -> Callable[..., Iterator[str]]:
    """A tab's Cancel: stop the job it started (the signed-in user's own only) and say where it stands, as the
    tab's own `status_line` says it, until it has stopped. The tab's stream says so too and ends on the same line;
    the button's answer keeps the page from resting on "Cancelling…" when that stream's updates stop coming (seen
    once in CI, on a page re-attached to its job after a reload)."""

    def cancel(job_id: str | None, request: gr.Request = None) -> Iterator[str]:
        if not job_id:
            yield "Nothing to cancel: no job was started here."
            return
        try:
            job = client.get(job_id, owner_of(request))
            if job.status.final:
                yield status_line(job) + nothing_to_cancel(job)
                return
            cancelled = client.cancel(job_id, owner_of(request))
        except client.JobNotFound as exc:
            yield text(exc)
            return
        shown = None
        for job in records(cancelled):
            line = status_line(job)
            if line != shown:
                shown = line
                yield line

    return cancel


def run_buttons(label: str, run_id: str, cancel_id: str) -> tuple[gr.Button, gr.Button]:
    """A section's run button and its Cancel, side by side."""
    with gr.Row():
        return (gr.Button(label, variant="primary", elem_id=run_id),
                gr.Button("Cancel", variant="stop", elem_id=cancel_id))


def wire_cancel(button: gr.Button, job_state: gr.State, status: gr.components.Component, api_name: str,
                status_line: Callable[[Job], str] = status_markdown) -> None:
    """Wire a tab's Cancel button (`cancelling`) to the job in `job_state` and the tab's `status` line (its text
    says "Cancelling…" while the job stops: no spinner over it)."""
    button.click(cancelling(status_line), job_state, status, api_name=api_name, concurrency_limit=None,
                 show_progress="hidden")


class Followers:
    """The pages following a job live. Each holds one of the web process's worker threads while it waits for the
    next record (Gradio runs a generator's steps in its thread pool), so one user opening a running job from a
    hundred page sessions held them all and every other user's clicks waited a minute. Each signed-in user keeps
    `per_user` and everyone `most` (below the pool's MAX_THREADS); a new one past either ends the oldest (its page
    stops updating; a reload follows the job again)."""

    def __init__(self, per_user: int = 16, most: int = 150) -> None:
        self._live = LatestPerOwner(per_user, most)  # token -> nothing; an anonymous page's owner is None

    def start(self, owner: str | None) -> object:
        token = object()
        self._live.add(token, owner)
        return token

    def active(self, token: object) -> bool:
        return token in self._live

    def end(self, token: object) -> None:
        self._live.discard(token)


MAX_THREADS = 200  # Gradio's worker threads (its default, 40, is what a hundred follows exhausted)
FOLLOWERS = Followers()


def records(job: Job) -> Iterator[Job]:
    """The job's record, then a fresh one every POLL_S seconds until it is final (the last one yielded), unless
    `FOLLOWERS` ends this follow first (the last one yielded is then the one seen last)."""
    token = FOLLOWERS.start(job.owner)
    try:
        yield job
        while not job.status.final and FOLLOWERS.active(token):
            time.sleep(POLL_S)
            job = client.get(job.id)
            yield job
    finally:
        FOLLOWERS.end(token)


def follow(job: Job, progress: gr.Progress) -> Iterator[Job]:
    """Yield the job's record until it is final (the last one yielded), updating the progress bar."""
    for job in records(job):  # noqa: B020 - the last record is the final one
        if not job.status.final:
            progress(job.progress, desc=progress_text(job))
        elif job.status is Status.FAILED:
            gr.Warning(job.error or "The job failed.")
        yield job
