"""Artifact store: job records, inputs and outputs in one directory tree shared by web and workers.

    <root>/jobs/<job id>/job.json        the record (written atomically)
    <root>/jobs/<job id>/inputs/<role>/<file>  uploaded inputs by role ("images", "references"…)
    <root>/jobs/<job id>/outputs/<file>  results written by the worker
    <root>/jobs/<job id>/cancel          present once a cancel was asked for
    <root>/active/<job id>               present while a job may be unfinished (`active()` reads only these)
    <root>/owners/<owner key>/<job id>   a signed-in user's jobs (`owned()` reads only these)

Everything travels between processes by job id; only this directory has to be shared.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.files import write_atomically
from engine.naming import brief, distinct_names, file_key, is_key
from tasks.config import get_settings
from tasks.jobs import Job, Status
from tasks.named_folders import owner_key

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MARK_GRACE_S = 60  # a mark without a record is a job being created for this long, then a deleted one
_HEX = re.compile(r"^[0-9a-f]*$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class JobNotFound(LookupError):
    """No job with that id in this store."""


def tree_bytes(folder: Path) -> int:
    """Bytes the files under `folder` take."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def safe_filename(name: str, fallback: str = "file") -> str:
    """A file name that cannot leave its folder: no separators, no leading dots, bounded length."""
    base = _UNSAFE_CHARS.sub("_", Path(str(name).replace("\\", "/")).name).lstrip("._")
    return (base or fallback)[-120:]


def _checked_key(job_id: str, key: str) -> str:
    """`key` itself when it names one file in its folder (engine.naming.is_key), else no such file."""
    if not is_key(key) or key in (".", ".."):
        raise JobNotFound(f"Job {job_id} has no file {key!r}: stored names are single file names.")
    return key


class JobMarks:
    """Empty files named by job id, in a folder per group: which jobs belong to a subset (the unfinished ones, one
    user's), found without reading every record. Marks are written before the record says a job belongs and
    removed after it says it no longer does, so they may outnumber the subset (a reader drops the extra ones) but
    never fall short. `.complete` says they are whole: a store from before them is scanned once, with `group_of`
    (a job's group, None when it belongs to none)."""

    def __init__(self, folder: Path, group_of: Callable[[Job], str | None]) -> None:
        self.folder = folder
        self.group_of = group_of

    @property
    def complete(self) -> bool:
        return (self.folder / ".complete").exists()

    def completed(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / ".complete").touch()

    def add(self, job_id: str, group: str = "") -> None:
        (self.folder / group).mkdir(parents=True, exist_ok=True)
        (self.folder / group / job_id).touch()

    def remove(self, job_id: str, group: str = "") -> None:
        (self.folder / group / job_id).unlink(missing_ok=True)

    def older_than(self, job_id: str, seconds: float, group: str = "") -> bool:
        try:
            return time.time() - (self.folder / group / job_id).stat().st_mtime > seconds
        except OSError:
            return False

    def has(self, job_id: str, group: str = "") -> bool:
        return (self.folder / group / job_id).is_file()

    def ids(self, group: str = "") -> list[str]:
        folder = self.folder / group
        return [entry.name for entry in folder.iterdir() if _JOB_ID.match(entry.name)] if folder.is_dir() else []


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What ordering, ownership and the storage bound read of a record: enough to pick the records a page shows
    and to add up what a user keeps without holding anyone's inputs, outputs or results."""

    created_at: float
    owner: str | None
    final: bool
    ended_bytes: int | None  # an ended job's folder, measured as it ended (its inputs for an older record); else None


Version = tuple[int, int, int, int]  # a record file's (inode, size, modification and change times in ns)


class EndedRecords:
    """The facts of ended jobs' records, kept in this process by the version of their file, so a Jobs-table refresh or
    a storage check parses only the records that changed since the last one (a user with 500 jobs had each refresh
    and each submission parse all 500). Every write replaces a record with a new file (`write_atomically`), so its
    version names its content; what is kept is checked against the file each time, so a record changed by another
    process, renamed or deleted is read again, and a new process starts empty. Unfinished records are not kept: few,
    and they change at every step. At most `most` are kept, the least recently used dropped first."""

    def __init__(self, most: int = 100_000) -> None:
        self.most = most
        self._facts: OrderedDict[str, tuple[Version, RecordFacts]] = OrderedDict()
        self._lock = threading.Lock()  # the web process's worker threads share it

    def get(self, path: Path, version: Version) -> RecordFacts | None:
        with self._lock:
            kept = self._facts.get(str(path))
            if kept is None or kept[0] != version:
                return None
            self._facts.move_to_end(str(path))
            return kept[1]

    def put(self, path: Path, version: Version, facts: RecordFacts) -> None:
        with self._lock:
            self._facts[str(path)] = (version, facts)
            self._facts.move_to_end(str(path))
            while len(self._facts) > self.most:
                self._facts.popitem(last=False)

    def drop(self, path: Path) -> None:
        with self._lock:
            self._facts.pop(str(path), None)

    def __len__(self) -> int:
        return len(self._facts)


ENDED_RECORDS = EndedRecords()  # this process's: every ArtifactStore of it shares them (get_store makes one per call)


class ArtifactStore:
    def __init__(self, root: Path, ended_records: EndedRecords = ENDED_RECORDS) -> None:
        self.root = Path(root)
        self.ended_records = ended_records
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.active_marks = JobMarks(self.root / "active", lambda job: None if job.status.final else "")
        self.owner_marks = JobMarks(self.root / "owners",
                                    lambda job: None if job.owner is None else owner_key(job.owner))
        if next(self.jobs_dir.iterdir(), None) is None:  # a new store: its marks are whole from the start
            for marks in (self.active_marks, self.owner_marks):
                marks.completed()

    # -- paths --------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not _JOB_ID.match(str(job_id)):
            raise JobNotFound(f"No job '{brief(str(job_id))}': job ids are 32 hexadecimal characters.")
        return self.jobs_dir / job_id

    def input_path(self, job_id: str, stored: str) -> Path:
        """Path of an input recorded as '<role>/<key>' in the job (the key as stored, checked, not re-derived)."""
        role, _, key = stored.partition("/")
        return self.job_dir(job_id) / "inputs" / _checked_key(job_id, role) / _checked_key(job_id, key)

    def output_path(self, job_id: str, key: str) -> Path:
        """Path of the output stored under `key` (as listed in the job's outputs): the key is checked to name a
        file inside outputs/, never re-derived, so what a writer recorded is what is found."""
        return self.job_dir(job_id) / "outputs" / _checked_key(job_id, key)

    def input_files(self, job: Job, role: str) -> list[tuple[str, Path]]:
        """(display name, stored path) of each input of a role, in upload order; records written before display
        names were kept fall back to the name in the stored key."""
        prefix = f"{role}/"
        return [(job.input_names.get(stored) or stored.removeprefix(prefix).split("_", 1)[-1],
                 self.input_path(job.id, stored)) for stored in job.inputs if stored.startswith(prefix)]

    def input_bytes(self, job: Job) -> int:
        """Bytes the job's stored inputs take (a file gone meanwhile counts nothing)."""
        total = 0
        for stored in job.inputs:
            with contextlib.suppress(OSError, JobNotFound):
                total += self.input_path(job.id, stored).stat().st_size
        return total

    # -- records ------------------------------------------------------------------------------
    def create(self, tool: str, params: dict, files: Mapping[str, Sequence[tuple[str, Path]]],
               owner: str | None = None) -> Job:
        """Store a new queued job with copies of its input files: {role: [(name shown to the user, path)]}.

        Each file is stored under a key (engine.naming.file_key: safe, bounded, its extension kept); its
        display name is recorded in `input_names` as given, same names across the job told apart once here
        ('000.png', '000 (2).png') so every tool's rows and outputs name one file each.
        """
        job = Job(id=uuid.uuid4().hex, tool=tool, params=params, owner=owner)
        if owner is not None:
            self.owner_marks.add(job.id, owner_key(owner))
        job_dir = self.job_dir(job.id)
        (job_dir / "inputs").mkdir(parents=True)
        (job_dir / "outputs").mkdir()
        shown = iter(distinct_names(str(name) for named in files.values() for name, _ in named))
        for role, named in files.items():
            (job_dir / "inputs" / safe_filename(role)).mkdir()
            for index, (_, source) in enumerate(named):
                display = next(shown)
                stored = f"{safe_filename(role)}/{file_key(display, index)}"
                shutil.copyfile(source, self.input_path(job.id, stored))
                job.inputs.append(stored)
                job.input_names[stored] = display
        self._write(job)
        return job

    def read(self, job_id: str) -> Job:
        path = self.job_dir(job_id) / "job.json"
        try:
            return Job.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise JobNotFound(f"No job {job_id}.") from None

    def update(self, job_id: str, change: Callable[[Job], None]) -> Job:
        """Read-modify-write under a per-job lock, so web and worker never lose each other's writes."""
        with self._lock(job_id):
            job = self.read(job_id)
            change(job)
            self._write(job)
            return job

    def ids_starting_with(self, prefix: str) -> list[str]:
        """Ids of the stored jobs that start with `prefix` (folder names only: no record is read)."""
        if not _HEX.match(prefix):
            return []
        return [entry.name for entry in self.jobs_dir.glob(f"{prefix}*") if _JOB_ID.match(entry.name)]

    def list(self, limit: int | None = 100) -> list[Job]:
        """Most recent jobs first (all of them with `limit=None`); once this process has parsed an ended record, only
        the jobs returned are read in full (`EndedRecords`)."""
        found = []
        for entry in self.jobs_dir.iterdir():
            with contextlib.suppress(JobNotFound, json.JSONDecodeError, OSError):
                found.append((entry.name, *self._facts(entry.name)))
        return self._newest(found, limit)

    def active(self) -> list[Job]:
        """The queued and running jobs, most recent first, read without reading every record: what a queued job's
        place in line, the queue limits and a restart need, however many finished jobs the store keeps. (`_write`
        marks a job before its record says it is unfinished and unmarks it after its record says it ended.)"""
        return self._newest(self._marked(self.active_marks, lambda facts: not facts.final), None)

    def owned(self, owner: str, limit: int | None = None) -> list[Job]:
        """`owner`'s `limit` most recent jobs (all with None), most recent first (their Jobs table), read without
        reading other users' records, nor again their own ended ones not returned (`EndedRecords`)."""
        return self._newest(self._marked(self.owner_marks, lambda facts: facts.owner == owner, owner_key(owner)),
                            limit)

    def owned_ids_starting_with(self, owner: str, prefix: str) -> list[str]:
        """Ids of the jobs marked as `owner`'s that start with `prefix` (a mark may outlive its job): found among that
        user's marks only, so a look-up takes as long whether or not another user has a job of that prefix."""
        self._complete(self.owner_marks)
        return [job_id for job_id in self.owner_marks.ids(owner_key(owner)) if job_id.startswith(prefix)]

    def marked_as_owned(self, owner: str, job_id: str) -> bool:
        """Whether the job is marked as `owner`'s (marks never fall short: unmarked is not theirs), read from no
        record, so another user's job and no job at all take the same time to refuse."""
        self._complete(self.owner_marks)
        return self.owner_marks.has(job_id, owner_key(owner))

    def owned_bytes(self, owner: str) -> int:
        """Bytes `owner`'s jobs keep: an ended job's folder as measured when it ended, the stored inputs of the
        others. Parses only the records that changed since this process last asked (`EndedRecords`)."""
        total = 0
        for _, facts, job in self._marked(self.owner_marks, lambda facts: facts.owner == owner, owner_key(owner)):
            if facts.ended_bytes is not None:
                total += facts.ended_bytes
            elif job is not None:  # unfinished: always parsed
                total += self.input_bytes(job)
        return total

    def _marked(self, marks: JobMarks, belongs: Callable[[RecordFacts], bool],
                group: str = "") -> list[tuple[str, RecordFacts, Job | None]]:
        """(id, facts, record when it was parsed) of the marked jobs that `belongs` keeps; the marks of others (ended,
        deleted) are dropped."""
        self._complete(marks)
        found = []
        for job_id in marks.ids(group):
            try:
                facts, job = self._facts(job_id)
            except (JobNotFound, json.JSONDecodeError, OSError):
                if marks.older_than(job_id, MARK_GRACE_S, group):  # a job deleted, not one being created now
                    marks.remove(job_id, group)
                continue
            if belongs(facts):
                found.append((job_id, facts, job))
            else:
                marks.remove(job_id, group)
        return found

    def _complete(self, marks: JobMarks) -> None:
        """Mark the jobs of a store from before `marks` existed (once: then they are kept whole as jobs change)."""
        if not marks.complete:
            for job in self.list(limit=None):
                if (job_group := marks.group_of(job)) is not None:
                    marks.add(job.id, job_group)
            marks.completed()

    def _facts(self, job_id: str) -> tuple[RecordFacts, Job | None]:
        """A job's facts, and its record when it had to be parsed for them (an unfinished or changed one)."""
        path = self.job_dir(job_id) / "job.json"
        try:
            stat = path.stat()  # before the read: what is kept under this version is this content or newer
        except FileNotFoundError:
            self.ended_records.drop(path)
            raise JobNotFound(f"No job {job_id}.") from None
        version = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if (facts := self.ended_records.get(path, version)) is not None:
            return facts, None
        job = self.read(job_id)
        ended_bytes = (self.input_bytes(job) if job.stored_bytes is None else job.stored_bytes) if job.status.final \
            else None
        facts = RecordFacts(job.created_at, job.owner, job.status.final, ended_bytes)
        if facts.final:
            self.ended_records.put(path, version, facts)
        return facts, job

    def _newest(self, found: Iterable[tuple[str, RecordFacts, Job | None]], limit: int | None) -> list[Job]:
        """The `limit` most recent of the found jobs (all with None), most recent first, read in full (one deleted
        meanwhile left out)."""
        jobs = []
        for job_id, _, job in sorted(found, key=lambda item: item[1].created_at, reverse=True)[:limit]:
            with contextlib.suppress(JobNotFound, json.JSONDecodeError, OSError):
                jobs.append(job if job is not None else self.read(job_id))
        return jobs

    def delete(self, job_id: str) -> int:
        """Delete one job's folder (record, inputs, outputs); returns the bytes it held. Callers check it ended."""
        job_dir = self.job_dir(job_id)
        held = tree_bytes(job_dir)
        shutil.rmtree(job_dir)
        return held

    def purge(self, older_than_s: float, now: float | None = None) -> list[str]:
        """Delete finished jobs (record, inputs, outputs) that ended more than `older_than_s` ago.

        Queued and running jobs are never touched. Returns the ids removed.
        """
        cutoff = (now or time.time()) - older_than_s
        removed = []
        for job in self.list(limit=None):
            ended = job.finished_at or job.created_at
            if job.status.final and ended < cutoff:
                shutil.rmtree(self.job_dir(job.id), ignore_errors=True)
                removed.append(job.id)
        return removed

    # -- cancellation -------------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        (self.job_dir(job_id) / "cancel").write_text(str(time.time()))

    def cancel_requested(self, job_id: str) -> bool:
        return (self.job_dir(job_id) / "cancel").exists()

    # -- internals ----------------------------------------------------------------------------
    def _write(self, job: Job) -> None:
        if not job.status.final:  # marked before the record says unfinished, unmarked after it says ended
            self.active_marks.add(job.id)
        write_atomically(self.job_dir(job.id) / "job.json", json.dumps(job.to_dict(), indent=1))
        if job.status.final:
            self.active_marks.remove(job.id)

    def submission_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while a job is admitted (limits checked, record created), so concurrent submitters in
        any process cannot together go past the queue limits."""
        return _exclusive(self.root / ".submit.lock")

    def _lock(self, job_id: str) -> contextlib.AbstractContextManager[None]:
        return _exclusive(self.job_dir(job_id) / ".lock")


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """An exclusive advisory lock on `lock_file`, shared by every process using the store."""
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get_store() -> ArtifactStore:
    return ArtifactStore(get_settings().artifact_dir)


def finish_job(store: ArtifactStore, job_id: str, status: Status, message: str, error: str | None = None,
               result: dict[str, Any] | None = None, outputs: list[str] | None = None) -> None:
    """Put a job in a final state with its message (and error, result, outputs)."""

    def change(job: Job) -> None:
        job.status, job.message, job.error, job.finished_at = status, message, error, time.time()
        if status is Status.SUCCEEDED:
            job.progress = 1.0
        if result is not None:
            job.result = result
        if outputs is not None:
            job.outputs = outputs
        job_dir, job.stored_bytes = store.job_dir(job_id), 0
        record = len(json.dumps(job.to_dict(), indent=1))  # as it is about to be written (within a few digits)
        job.stored_bytes = tree_bytes(job_dir) - (job_dir / "job.json").stat().st_size + record

    store.update(job_id, change)
