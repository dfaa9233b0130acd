"""The job API used by the web UI, Python callers and `python -m tasks`: submit, status, cancel, wait.

It works the same in embedded mode and with Redis; it never imports torch.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserInputError
from engine.limits import check_params_size, int_setting
from engine.naming import brief
from engine.params import NamedFile, Params
from engine.presets import get_preset, presets_for
from engine.weights import check_runnable, hub_offline, is_installed, manifest
from tasks.celery_app import app
from tasks.config import get_settings
from tasks.jobs import Job, Status
from tasks.liveness import fail_if_lost, heartbeat_interval_s, silence_s
from tasks.quota import check_room
from tasks.registry import TOOLS, contract
from tasks.store import ArtifactStore, JobNotFound, finish_job, get_store

__all__ = ["TOOLS", "AmbiguousJobId", "Job", "JobNotFound", "QueueFull", "QueuePosition", "QueueUnavailable",
           "Status", "artifact_path", "cancel", "delete", "get", "hub_downloads_allowed", "jobs_ahead", "list_jobs",
           "presets", "queue_position", "rename", "resolve", "submit", "wait"]

MIN_PREFIX = 4  # characters of an id that open a job (the page shows 8)
JOB_NAME_MAX = 80
_FULL_ID = re.compile(r"^[0-9a-f]{32}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class QueueUnavailable(RuntimeError):
    """The broker cannot be reached; the job was stored and marked failed."""


class QueueFull(UserInputError):
    """Too many unfinished jobs (overall or for this user): nothing was stored; try again later."""


class AmbiguousJobId(JobNotFound):
    """A short id that starts more than one of the user's jobs: more characters are needed."""


def _check_capacity(owner: str | None, files: Mapping[str, Sequence[tuple[str, Path]]]) -> None:
    """Refuse work beyond the configured limits before anything is stored."""
    total = sum(path.stat().st_size for named in files.values() for _, path in named)
    total_mb = total / 2**20
    max_mb = int_setting("FEWSHOT_MAX_JOB_UPLOAD_MB", 2000)
    if total_mb > max_mb:
        raise UserInputError(f"The files of this job add up to {total_mb:.0f} MB; at most {max_mb} MB per job are "
                             "accepted (FEWSHOT_MAX_JOB_UPLOAD_MB). Split them into several jobs.")
    store = get_store()
    check_room(owner, total, "this job")
    active = store.active()
    max_total = int_setting("FEWSHOT_MAX_ACTIVE_JOBS", 200)
    if len(active) >= max_total:
        raise QueueFull(f"Busy: {len(active)} jobs are waiting or running (the limit is {max_total}). "
                        "Try again in a few minutes.")
    max_own = int_setting("FEWSHOT_MAX_ACTIVE_JOBS_PER_USER", 20)
    own = sum(job.owner == owner for job in active)
    if owner is not None and own >= max_own:
        raise QueueFull(f"Busy: you already have {own} jobs waiting or running (the limit per user is {max_own}). "
                        "Wait for some to finish, or cancel some in the Jobs tab, then try again.")


FileSpec = str | Path | tuple[str, str | Path]
Files = Sequence[FileSpec] | Mapping[str, Sequence[FileSpec]]


def presets(tool: str) -> list[dict[str, Any]]:
    """Selectable models of a tool: name, label, whether the weights are random, whether they are on this machine
    (the loader's own check, torch-free) and, for the page's details, which repositories' files it looks for."""
    return [{"name": p.name, "label": p.label, "method": p.method, "random_weights": p.random_weights,
             "installed": is_installed(p),
             "files": [(f.repo, f.describe()) for f in manifest(p) if not f.optional]} for p in presets_for(tool)]


def hub_downloads_allowed() -> bool:
    """Whether a job may download missing weights (HF_HUB_OFFLINE not set)."""
    return not hub_offline()


def _named_files(files: Sequence[FileSpec]) -> list[tuple[str, Path]]:
    named = []
    for spec in files:
        name, path = (spec[0], Path(spec[1])) if isinstance(spec, tuple) else (Path(spec).name, Path(spec))
        if not path.is_file():
            raise UserInputError(f"{name}: no such file to upload (it was moved or deleted, or its upload expired).")
        named.append((name, path))
    return named


def _check_models(params: Params, files: Mapping[str, Sequence[NamedFile]], owner: str | None) -> None:
    """Refuse a run whose models cannot be used: a saved model `owner` has no such name for (another user's private
    one is said to be missing, like one that is), or one these parameters or files cannot use; and, on a machine
    that downloads none, missing weights of its presets or of the saved model's base preset (a model trained, or
    uploaded, where those weights were)."""
    names = list(params.presets())
    if params.saved_model() is not None:
        from tasks import finetune_models

        meta = finetune_models.get(params.saved_model(), owner=owner)
        params.check_saved_model(meta, files)
        names.append(meta["base_preset"])
    for name in dict.fromkeys(names):
        check_runnable(get_preset(name))


def _checked_name(name: str | None) -> str | None:
    """A job name as stored: one line, runs of spaces collapsed, at most JOB_NAME_MAX characters; blank: no name."""
    cleaned = " ".join(str(name or "").split())
    if any(unicodedata.category(char) == "Cc" for char in cleaned):
        raise UserInputError("A job name cannot contain control characters: use letters, digits and punctuation.")
    if len(cleaned) > JOB_NAME_MAX:
        raise UserInputError(f"A job name has at most {JOB_NAME_MAX} characters; this one has {len(cleaned)}.")
    return cleaned or None


def submit(tool: str, params: dict[str, Any], files: Files = (), owner: str | None = None,
           name: str | None = None) -> Job:
    """Store the inputs, record a queued job and hand its id to a worker; `name` is what the user calls it.

    `files` is a list of images, or {role: files} for tools with several inputs (anomaly:
    "images" (images or zips of them) and the optional "references", images of good parts for
    WinCLIP+; anomaly_video: "video" (one file) and "references"; anomaly_evaluate: "dataset",
    one zip in the MVTec AD layout; completion and completion_evaluate: "images" (images or zips),
    "annotations" (COCO JSON, YOLO txt + classes.txt, VOC XML, or a zip) and, for completion, an
    optional "video" whose sampled frames become the images; insertion: "image" or "video" (one
    file), "mask" (drawn layers or mask images of the image or the anchor frame) and, for
    params["region_mode"] == "masks", "masks" (one mask per frame); finetune_classify: "dataset"
    (zips with a folder per class), "class_000", "class_001"… (images of the class named by
    params["class_names"][i]) and optional "unlabeled" images; finetune_detect: "dataset" (images
    and COCO / YOLO / VOC annotations, or zips of them); finetune_kshot: those of params["task"]'s training job;
    finetune_predict: "images" or, for a
    classifier, "video"). params["reference_set"] names a saved set of good images (`tasks.reference_sets`):
    its files are copied into the job's references, so the job keeps them even if the set is
    deleted later; it is looked up as `owner` (their own set, or another user's shared one as "user/name").
    Nothing is stored for a refused run: bad parameters or files, a full queue, or a model whose weights are
    missing on a machine that downloads none (a job with it would fail at once).
    """
    if tool not in TOOLS:
        raise UserInputError(f"Unknown tool {tool!r}; available: {', '.join(sorted(TOOLS))}.")
    check_params_size(params)  # bounded before it is read: a 5 MB value is refused for its size
    checked = contract(tool).Params.from_dict(params)  # checked before anything is stored
    params = checked.to_dict()
    name = _checked_name(name)
    if params.get("model_name"):  # a training saves its model under it: a bad or taken name is refused now
        from tasks import finetune_models

        finetune_models.check_free(params["model_name"], owner=owner)
    settings = get_settings()
    store = get_store()
    by_role = dict(files) if isinstance(files, Mapping) else {"images": files}
    if params.get("reference_set"):
        from tasks import reference_sets

        by_role["references"] = [*by_role.get("references", []),
                                  *reference_sets.files(params["reference_set"], owner=owner)]  # own or shared
    named = {role: _named_files(specs) for role, specs in by_role.items() if specs}
    checked.check_inputs(named)
    _check_models(checked, named, owner)  # not under the lock: its look-ups can be slow, and the lock is everyone's
    if settings.embedded:  # first: its start sends again the unfinished jobs, which must not include this one
        from tasks import embedded

        embedded.ensure_started()
    with store.submission_lock():
        _check_capacity(owner, named)
        job = store.create(tool, dict(params), named, owner=owner)

        def label(record: Job) -> None:
            record.lane, record.name = TOOLS[tool].lane, name

        job = store.update(job.id, label)
    try:
        app.send_task(TOOLS[tool].task, args=[job.id], task_id=job.id, retry=True,  # queue: by lane (task_routes)
                      retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
    except Exception as exc:
        message = (f"The job queue at {settings.broker_display} cannot be reached ({type(exc).__name__}). "
                   "Start Redis, or unset FEWSHOT_REDIS_URL to run jobs in worker processes of the app.")
        finish_job(store, job.id, Status.FAILED, "Failed", error=message)
        raise QueueUnavailable(message) from exc
    return job


def resolve(job_ref: str, owner: str | None = None) -> str:
    """The full id of the job `job_ref` names: a full id, or the first characters (4 or more) of the id of one of
    `owner`'s own jobs (of any job without `owner`), as the page shows them. Another user's jobs never match a
    prefix, so an ambiguous prefix only counts one's own."""
    ref = (job_ref or "").strip().lower()
    store = get_store()
    if _FULL_ID.match(ref):
        if owner is not None and not store.marked_as_owned(owner, ref):
            raise JobNotFound(f"No job {brief(job_ref.strip())}.")
        return ref
    if not ref:
        raise JobNotFound(f"No job id given: give its id or its first {MIN_PREFIX} characters or more.")
    if not _HEX.match(ref):
        raise JobNotFound(f"No job {brief(job_ref)}.")
    if len(ref) < MIN_PREFIX:
        raise JobNotFound(f"No job {brief(ref)}: give at least {MIN_PREFIX} characters of its id.")
    candidates = store.ids_starting_with(ref) if owner is None else store.owned_ids_starting_with(owner, ref)
    matches = [job_id for job_id in candidates if owner is None or _owner_of(store, job_id) == owner]
    if len(matches) > 1:
        raise AmbiguousJobId(f"{len(matches)} jobs start with {brief(ref)}: give more characters.")
    if not matches:
        raise JobNotFound(f"No job {brief(ref)}.")
    return matches[0]


def _owner_of(store: ArtifactStore, job_id: str) -> str | None:
    try:
        return store.read(job_id).owner
    except JobNotFound:  # deleted meanwhile
        return None


def get(job_id: str, owner: str | None = None) -> Job:
    """A job's record, by its id or a unique prefix of it (`resolve`). With `owner` (a signed-in user), another
    user's job does not exist."""
    store = get_store()
    job = store.read(resolve(job_id, owner))
    if owner is not None and job.owner != owner:
        raise JobNotFound(f"No job {brief((job_id or '').strip())}.")
    return fail_if_lost(store, job)


def rename(job_id: str, name: str | None, owner: str | None = None) -> Job:
    """Give one's own job a name (blank: none), shown beside its id in the page."""
    name = _checked_name(name)
    job = get(job_id, owner)
    return get_store().update(job.id, lambda record: setattr(record, "name", name))


@dataclass(frozen=True)
class QueuePosition:
    """What runs before a queued job in its lane, as tool names only (no owner, name or file of anyone's job):
    `running` now, then the queued jobs `ahead` of it, oldest first."""

    running: tuple[str, ...]
    ahead: tuple[str, ...]


def queue_position(job: Job) -> QueuePosition:
    """The jobs of `job`'s lane running now, and the queued ones submitted before it (they run first)."""
    store = get_store()
    lane = [other for other in store.active() if other.lane == job.lane and other.id != job.id]
    running = [other for other in lane if fail_if_lost(store, other).status is Status.RUNNING]
    ahead = [other for other in lane if other.status is Status.QUEUED and other.created_at < job.created_at]
    return QueuePosition(tuple(other.tool for other in reversed(running)),
                         tuple(other.tool for other in reversed(ahead)))


def jobs_ahead(job: Job) -> int:
    """How many queued jobs of the same lane were submitted before `job` (they run first)."""
    return len(queue_position(job).ahead)


def list_jobs(limit: int = 50, owner: str | None = None) -> list[Job]:
    """Most recent jobs first; with `owner`, only that user's."""
    store = get_store()
    jobs = store.list(limit) if owner is None else store.owned(owner, limit)
    return [fail_if_lost(store, job) for job in jobs]


def cancel(job_id: str, owner: str | None = None) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one at its next step, or at once
    when its worker has stopped beating (killed: nobody would see the request until it is redelivered)."""
    job_id = get(job_id, owner).id
    store = get_store()
    store.request_cancel(job_id)
    silent = 3 * heartbeat_interval_s()

    def cancel_if_queued(job: Job) -> None:
        if job.status is Status.QUEUED:
            job.status, job.message, job.finished_at = Status.CANCELLED, "Cancelled before it started", time.time()
        elif job.status is Status.RUNNING and silence_s(store, job) > silent:
            job.status, job.message, job.finished_at = Status.CANCELLED, "Cancelled", time.time()
        elif job.status is Status.RUNNING:
            job.message = "Cancelling…"

    return store.update(job_id, cancel_if_queued)


def delete(job_id: str, owner: str | None = None) -> tuple[Job, int]:
    """Delete one's own finished job: its record, input files and results (what it counted toward the storage
    bound); returns its last record and the bytes freed. A queued or running job is cancelled first."""
    job = get(job_id, owner)
    if not job.status.final:
        raise UserInputError(f"Job {job.id[:8]} is {job.status.value}: cancel it first (Cancel job), then delete it "
                             "once it has stopped.")
    return job, get_store().delete(job.id)


def wait(job_id: str, timeout: float | None = None, poll_s: float = 0.2) -> Job:
    """Block until the job is final (or `timeout` seconds pass) and return its record."""
    deadline = None if timeout is None else time.monotonic() + timeout
    job_id = resolve(job_id)
    while True:
        job = get(job_id)
        if job.status.final or (deadline is not None and time.monotonic() >= deadline):
            return job
        time.sleep(poll_s)


def artifact_path(job_id: str, name: str, owner: str | None = None) -> Path:
    """Path of one of a job's outputs (only names listed in its record)."""
    job = get(job_id, owner)
    if name not in job.outputs:
        raise JobNotFound(f"Job {job_id} has no output {name!r}; it has: {', '.join(job.outputs) or 'none yet'}.")
    return get_store().output_path(job.id, name)


def input_files(job_id: str, role: str, owner: str | None = None) -> list[tuple[str, Path]]:
    """(name the user gave it, stored path) of each of a job's inputs of one role, in upload order."""
    return get_store().input_files(get(job_id, owner), role)


def add_outputs(job_id: str, write: Callable[[Path], list[str]], owner: str | None = None) -> list[Path]:
    """Let `write` add files to a finished job's outputs folder (e.g. a review's exports) and list the names it
    returns in the job's record, so they are served like the job's own outputs."""
    job_id = get(job_id, owner).id
    store = get_store()
    out_dir = store.job_dir(job_id) / "outputs"
    names = write(out_dir)

    def register(job: Job) -> None:
        job.outputs += [name for name in names if name not in job.outputs]

    store.update(job_id, register)
    return [out_dir / name for name in names]
