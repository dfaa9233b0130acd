"""Files handed to the browser, and the guard in front of Gradio's file route.

The artifact store is never served as it is (it holds every user's inputs). A page that shows or offers a
job's file gets a copy in Gradio's upload folder, at the very path Gradio's own cache would give it (a
secret-seeded content hash), recorded with its owner: the file route then serves it only to that owner,
as an attachment unless it is an image or a video the app itself encoded, with `nosniff`. A user's uploads
are recorded with their owner too, and a request that names a file as an input (a run, by the page or the
API) is refused when the file was handed to someone else: a leaked link gets neither the file nor a job
that reads it. Copies of a purged job are deleted with it; every other file in the upload folder (uploads,
previews) ages out after FEWSHOT_UPLOAD_CACHE_HOURS. The owners of uploads (and of copies handed out for no job)
are also written to a ledger, read again at start, so a restart leaves no upload readable by everyone.

What one signed-in user may upload within that time is bounded (FEWSHOT_MAX_USER_UPLOAD_MB), so nobody fills
the disk with uploads no job ever reads. Nothing reaches the server by URL: Gradio downloads a run's input given
as a URL (any size, past the limits and the quota), and its file route takes URLs too; the guard refuses both.

The same ASGI middleware slows down guessing passwords: after `THROTTLE_AFTER` failed sign-ins within a
minute for one user name or one address, each further attempt waits twice as long as the one before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from gradio_client.utils import is_http_url_like
from starlette.requests import ClientDisconnect

from engine.files import write_atomically
from tasks import client
from tasks.client import Job

log = logging.getLogger(__name__)

RECORDS = "fewshot-served"  # <upload folder>/fewshot-served/<job id>.txt: the copies handed out for a job
LEDGER = "uploads.jsonl"  # <upload folder>/fewshot-served/uploads.jsonl: {path, owner, time, bytes} of each upload
SCRATCH = "fewshot-scratch"  # files the pages make for a user (model downloads, anchor frames)
INLINE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm")
FILE_ROUTE = re.compile(r"/file=|/gradio_api/file/")  # Gradio's file route and its deprecated twin
RUN_ROUTE = re.compile(r"/gradio_api/(queue/join|(call|run|api|stream)/.+)/?$")  # requests whose inputs name files
UPLOAD_ROUTE = "/gradio_api/upload"
# A component's server function (the image editor's pictures of an edit, held in memory until a run): one
# picture a request, bounded as an upload is.
COMPONENT_SERVER_ROUTE = re.compile(r"/gradio_api/component_server/?$")
# Routes that name a page session (its random `session_hash`) and read or end what runs in it: its event stream,
# its keep-alive, its media streams, a cancel. Each session belongs to the user who first ran something in it.
# An upload's progress (its `upload_id`, which names the files) is its uploader's alike.
SESSION_ROUTE = re.compile(r"/gradio_api/((?P<progress>upload_progress)|queue/data|heartbeat/(?P<beat>[^/]+)|"
                           r"stream/(?P<media>[^/]+)/.+/.+)/?$")
# Routes that name a run by its `event_id` (answered to whoever started it): a call's results (GET; Gradio reads a
# page session's stream there too when the id is a session hash), data for a streaming input and its end (POST).
CALL_RESULT_ROUTE = re.compile(r"/gradio_api/call/.+/(?P<event>[^/]+)/?$")
EVENT_ROUTE = re.compile(r"/gradio_api/stream/(?P<event>[^/]+)(/close)?/?$")
NEW_EVENT_ROUTE = re.compile(r"/gradio_api/(queue/join|call/.+)/?$")  # answered with the new run's `event_id`
CANCEL_ROUTE = re.compile(r"/gradio_api/cancel/?$")
# Gradio routes the app does not offer: deep links snapshot any session's state; nothing records from a camera; the
# "vibe" editor (code edits by a model) answers without sign-in and reads any body first.
ROUTES_OFF = re.compile(r"/gradio_api/(deep_link|process_recording|vibe-edit|undo-vibe-edit|vibe-code|"
                        r"vibe-starter-queries)/?$")

URL_INPUT_REFUSAL = ("A file was given by URL: upload the file itself (with gradio_client, handle_file() of a local "
                     "path). This server downloads nothing a request names, so every input is bounded as uploads are.")
SIGN_IN_MAX_BYTES = 16 * 2**10  # a user name and a password, form-encoded
REQUEST_MAX_BYTES = 16 * 2**20  # a run's JSON: inputs name uploaded files, they do not hold them
SIGN_IN_REFUSAL = "A sign-in is a form with one username and one password field."
REQUEST_REFUSAL = ("Request too large: a run's inputs name uploaded files (upload them first), at most "
                   f"{REQUEST_MAX_BYTES // 2**20} MB of JSON.")
ADDRESS_KEY = "address:"  # sign-in throttling counts failures per user name and per address ("address:<ip>")

_lock = threading.Lock()
_owners: dict[str, set[str | None]] = {}  # resolved path of a handed-out copy -> users it was handed to

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def upload_folder() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def upload_cache_hours() -> float:
    """How long uploads, previews and copies stay in Gradio's upload folder (FEWSHOT_UPLOAD_CACHE_HOURS)."""
    return float(os.environ.get("FEWSHOT_UPLOAD_CACHE_HOURS", 24))


def max_upload_mb() -> int:
    """Largest file one upload (or one picture of an edit) may be, in MB (FEWSHOT_MAX_UPLOAD_MB)."""
    return int(os.environ.get("FEWSHOT_MAX_UPLOAD_MB", 200))


def max_user_upload_mb() -> float:
    """Most MB one signed-in user may upload within FEWSHOT_UPLOAD_CACHE_HOURS (FEWSHOT_MAX_USER_UPLOAD_MB)."""
    return float(os.environ.get("FEWSHOT_MAX_USER_UPLOAD_MB", 10000))


class UploadQuota:
    """Bytes each signed-in user sent to the upload route while the upload folder keeps them."""

    def __init__(self, ledger: Iterable[dict[str, Any]] = ()) -> None:
        self._sent: dict[str, list[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        for entry in ledger:  # what was uploaded before a restart still counts
            if entry["owner"] is not None and entry.get("bytes"):
                self._sent.setdefault(entry["owner"], []).append((entry["time"], entry["bytes"]))

    def refusal(self, user: str, size: int, now: float) -> str | None:
        """Why an upload of `size` bytes is refused (the user would go past the limit), or None: it is counted."""
        hours, limit_mb = upload_cache_hours(), max_user_upload_mb()
        with self._lock:
            recent = [(t, n) for t, n in self._sent.get(user, []) if hours <= 0 or now - t < hours * 3600]
            used = sum(n for _, n in recent)
            self._sent[user] = recent
            if used + size <= limit_mb * 2**20:
                recent.append((now, size))
                return None
        window = f"in the last {hours:g} h" if hours > 0 else "since the app started"
        return (f"Upload refused: you uploaded {used / 2**20:.0f} MB {window} and this adds {size / 2**20:.0f} MB; "
                f"at most {limit_mb:g} MB per user are accepted (FEWSHOT_MAX_USER_UPLOAD_MB). Upload fewer files, "
                "or try again later.")


def _register(path: Path, owner: str | None, job_id: str | None, counted: bool = True) -> None:
    """Record who may read `path`: a job's copies in the job's record (deleted with it and at start), anything
    else (uploads, samples, answers' files) in the ledger, which outlives a restart; with its size unless it is
    not `counted` toward the owner's upload quota."""
    with _lock:
        _owners.setdefault(str(path), set()).add(owner)
        records = _records()
        if job_id:
            with open(records / f"{job_id}.txt", "a") as handle:
                handle.write(f"{path}\n")
        else:
            size = path.stat().st_size if counted and path.is_file() else 0
            entry = {"path": str(path), "owner": owner, "time": time.time(), "bytes": size}
            with open(records / LEDGER, "a") as handle:
                handle.write(json.dumps(entry) + "\n")


def _ledger() -> list[dict[str, Any]]:
    """The ledger's entries whose file is still there (a torn or foreign line is skipped)."""
    entries = []
    with contextlib.suppress(OSError):
        for line in (upload_folder() / RECORDS / LEDGER).read_text().splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                entry = json.loads(line)
                if Path(entry["path"]).is_file():
                    entries.append(entry)
    return entries


def restore_owners() -> list[dict[str, Any]]:
    """At start: the owners of uploads and job-less copies from before the restart, from the ledger, which is
    rewritten without the files that have gone meanwhile. Returns its entries (the upload quota counts them)."""
    entries = _ledger()
    with _lock:
        for entry in entries:
            _owners.setdefault(entry["path"], set()).add(entry["owner"])
        _rewrite_ledger(entries)
    return entries


def _records() -> Path:
    """The folder of the job records and the ledger, made when first needed."""
    records = upload_folder() / RECORDS
    records.mkdir(parents=True, exist_ok=True)
    return records


def _rewrite_ledger(entries: list[dict[str, Any]]) -> None:
    write_atomically(_records() / LEDGER, "".join(json.dumps(entry) + "\n" for entry in entries))


def hand_out(source: Path, owner: str | None, name: str | None = None, job_id: str | None = None) -> str:
    """Copy `source` where Gradio's file route can serve it to `owner` alone, and return that path."""
    from gradio.processing_utils import hash_file
    from gradio_client.utils import strip_invalid_filename_characters

    folder = upload_folder() / hash_file(source)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (strip_invalid_filename_characters(name or source.name) or "file")
    if not target.exists():
        staging = folder / f".{os.getpid()}-{time.monotonic_ns()}"
        try:  # stored files never change: a second name for the same bytes costs no disk (a restored 2 GB zip)
            os.link(source, staging)
            os.utime(staging)  # its time in the upload folder starts now (nothing reads a stored file's mtime)
        except OSError:  # another file system, one without hard links, or a read-only source
            staging.unlink(missing_ok=True)
            shutil.copyfile(source, staging)
        os.replace(staging, target)
    _register(target.resolve(), owner, job_id)
    return str(target)


def job_file(job: Job, name: str) -> str:
    """One of a job's outputs (a name listed in its record), as a copy served to the job's owner only."""
    return hand_out(client.artifact_path(job.id, name, job.owner), job.owner, name, job.id)


def job_inputs(job: Job, role: str) -> list[str]:
    """A job's input files of one role, as copies served to its owner only (the form it was submitted with)."""
    return [hand_out(path, job.owner, name, job.id) for name, path in client.input_files(job.id, role, job.owner)]


def scratch_dir(prefix: str) -> Path:
    """A new private folder for a file a page makes for one user; it ages out with the upload folder."""
    root = upload_folder() / SCRATCH
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def forget_jobs(job_ids: Iterable[str]) -> int:
    """Delete the copies handed out for these (purged) jobs; returns how many files went. A copy another job's
    record also lists (the same bytes under the same name, handed to another user) stays theirs."""
    records = upload_folder() / RECORDS
    paths: set[str] = set()
    for job_id in set(job_ids):
        record = records / f"{job_id}.txt"
        try:
            paths.update(record.read_text().splitlines())  # one path a line: names may hold spaces
        except OSError:
            continue
        record.unlink(missing_ok=True)
    if paths:
        for other in records.glob("*.txt"):
            with contextlib.suppress(OSError):
                paths.difference_update(other.read_text().splitlines())
    removed = 0
    for path in paths:
        with _lock:
            _owners.pop(path, None)
        with contextlib.suppress(OSError):
            Path(path).unlink()
            removed += 1
    return removed


def forget_all() -> None:
    """At start: copies handed out by an earlier run lose their owner record, so they are deleted."""
    records = upload_folder() / RECORDS
    if records.is_dir():
        forget_jobs(p.stem for p in records.glob("*.txt"))


def _purged_elsewhere() -> list[str]:
    """Jobs with handed-out copies that the store no longer has (purged by `python -m tasks purge`)."""
    gone = []
    for record in (upload_folder() / RECORDS).glob("*.txt"):
        try:
            client.get(record.stem)
        except client.JobNotFound:
            gone.append(record.stem)
    return gone


def sweep(now: float | None = None) -> int:
    """Delete the copies of jobs purged by another process, then files in the upload folder older than
    FEWSHOT_UPLOAD_CACHE_HOURS, then empty folders."""
    removed = forget_jobs(_purged_elsewhere())
    hours = upload_cache_hours()
    root = upload_folder()
    if hours <= 0 or not root.is_dir():
        return removed
    cutoff = (now or time.time()) - hours * 3600
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            if path.is_file() and path.parent.name != RECORDS and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
                with _lock:
                    _owners.pop(str(path), None)
            elif path.is_dir() and path != root and not any(path.iterdir()):
                path.rmdir()
    if removed:
        log.info("retention: deleted %d files older than %g h from the upload folder", removed, hours)
        with _lock:
            _rewrite_ledger(_ledger())  # without the files deleted
    return removed


def may_read(path: str, user: str | None) -> bool:
    """A handed-out copy or an upload reaches only the users it was handed to (or who uploaded it); the records
    of handed-out copies reach nobody; other files are Gradio's to judge."""
    resolved = Path(path).resolve()
    if resolved.parent == upload_folder() / RECORDS:
        return False
    with _lock:
        owners = _owners.get(str(resolved))
    return owners is None or None in owners or user in owners


def may_fetch(path: str, user: str | None) -> bool:
    """Whether the file route, or a run naming `path` as an input, may pass it on to Gradio for `user`. In the upload
    folder, a path that names no file is answered as another user's file is (not found): Gradio's "not allowed" (a
    run's server error) for it told a user whether someone had uploaded a file of a name and content they guessed
    (its folder is the hash of its content, which anyone learns by uploading the same bytes)."""
    if is_http_url_like(path) or not may_read(path, user):
        return False
    resolved = Path(path).resolve()
    return resolved.is_file() or not resolved.is_relative_to(upload_folder())


def named_files(value: Any) -> Iterable[str]:
    """The paths of the files a request's JSON names (Gradio's FileData: {"path": ...}, at any depth)."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            yield value["path"]
        for item in value.values():
            yield from named_files(item)
    elif isinstance(value, list):
        for item in value:
            yield from named_files(item)


class SignInThrottle:
    """Failed sign-ins per user name and per address within `window_s`; past `after`, a growing wait."""

    def __init__(self, after: int = 5, window_s: float = 60.0, first_delay_s: float = 0.5,
                 max_delay_s: float = 30.0) -> None:
        self.after, self.window_s, self.first_delay_s, self.max_delay_s = after, window_s, first_delay_s, max_delay_s
        self._failures: dict[str, list[float]] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_s(self, keys: Iterable[str], now: float) -> float:
        """Seconds this attempt must wait. Attempts from one address arriving together queue up one after another;
        a user name's attempts do not: they wait at most `max_delay_s`, so nobody holds off someone else's sign-in
        for longer by sending many wrong passwords for their name at once."""
        wait = 0.0
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
                self._failures[key] = recent
                if len(recent) < self.after:
                    continue
                delay = min(self.first_delay_s * 2 ** (len(recent) - self.after), self.max_delay_s)
                if not key.startswith(ADDRESS_KEY):
                    wait = max(wait, delay)
                    continue
                start = max(now, self._next_slot.get(key, now))
                self._next_slot[key] = start + delay
                wait = max(wait, start + delay - now)
        return wait

    def record(self, keys: Iterable[str], succeeded: bool, now: float) -> None:
        with self._lock:
            for key in keys:
                if succeeded:
                    self._failures.pop(key, None)
                    self._next_slot.pop(key, None)
                else:
                    self._failures.setdefault(key, []).append(now)


class SessionOwners:
    """The user each page session (`session_hash`) belongs to: who first ran something in it; and each run
    (`event_id`): who started it. Another user who learns a hash or an id (a log, a proxy) can then neither read
    its event stream or results nor cancel its runs.

    Each user keeps their `most_per_user` latest (a session's last run counts), so the table stays bounded and a
    user who floods it pushes out only their own: nobody can make another user's session ownerless."""

    def __init__(self, most_per_user: int = 20_000) -> None:
        self.most_per_user = most_per_user
        self._owners: dict[str, str | None] = {}
        self._latest: dict[str | None, OrderedDict[str, None]] = {}  # per user, least recently used first
        self._lock = threading.Lock()

    def claim(self, session: str, user: str | None) -> bool:
        """True when `session` is `user`'s (claimed now if nobody had it); False when it is someone else's."""
        with self._lock:
            owner = self._owners.setdefault(session, user)
            if owner != user:
                return False
            latest = self._latest.setdefault(user, OrderedDict())
            latest[session] = None
            latest.move_to_end(session)
            if len(latest) > self.most_per_user:
                del self._owners[latest.popitem(last=False)[0]]
            return True

    def allows(self, session: str | None, user: str | None) -> bool:
        """Whether `user` may read or end what runs in `session` (a session nobody ran anything in: anyone)."""
        with self._lock:
            owner = self._owners.get(session or "", user)
        return owner == user


def signed_in_user(scope: Scope) -> str | None:
    """The signed-in user, read as Gradio reads it (Starlette's cookie parser: quotes and escapes removed), so no
    request is someone to Gradio and nobody to this guard."""
    from starlette.requests import Request

    app = scope.get("app")
    cookies = Request(scope).cookies
    cookie_id = getattr(app, "cookie_id", "")
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return getattr(app, "tokens", {}).get(token) if token else None


class GuardMiddleware:
    """ASGI middleware: owner check and safe headers on Gradio's file route; sign-in throttling."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 throttle: SignInThrottle | None = None, uploads: UploadQuota | None = None) -> None:
        self.app = app
        self.throttle = throttle or SignInThrottle()
        self.uploads = uploads or UploadQuota()
        self.sessions = SessionOwners()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, started = RequestBody(receive), False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._guard(scope, body, sending)
        except ClientDisconnect:  # raised by whatever read the body when it ended early
            if body.left:  # nobody to answer, and nothing went wrong here: no traceback in the log
                log.debug("%s %s: the browser left before sending the whole request (a reload, a closed tab)",
                          scope.get("method"), scope.get("path"))
            elif body.passed and not started:
                await _refuse(send, 413, REQUEST_REFUSAL)
            else:
                raise

    async def _guard(self, scope: Scope, receive: RequestBody, send: Send) -> None:
        path = scope.get("path", "")  # decoded once by the server, as Gradio's routes read it
        post = scope.get("method") == "POST"
        if post and path.rstrip("/").endswith("/login"):
            await self._sign_in(scope, receive, send)
            return
        user = signed_in_user(scope)
        if post and (RUN_ROUTE.search(path) or CANCEL_ROUTE.search(path)):
            await self._run(scope, receive, send, path, user)
            return
        if post and COMPONENT_SERVER_ROUTE.search(path):
            size = _content_length(scope)
            if size is None or size > max_upload_mb() * 2**20 + 2**16:  # the picture and its form fields
                await _refuse(send, 411 if size is None else 413, "A picture of an edit needs a Content-Length "
                              f"header and at most {max_upload_mb()} MB (FEWSHOT_MAX_UPLOAD_MB).")
                return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if ROUTES_OFF.search(path) or not self._session_allowed(path, post, query, user):
            await _not_found(send)
            return
        if not post and (SESSION_ROUTE.search(path) or CALL_RESULT_ROUTE.search(path)):
            send = _owning_streamed_files(send, user)
        marker = FILE_ROUTE.search(path)
        if marker and not may_fetch(path[marker.end():], user):
            await _not_found(send)
            return
        uploading = post and path.rstrip("/").endswith(UPLOAD_ROUTE)
        if not uploading and not COMPONENT_SERVER_ROUTE.search(path):  # any other body: a form or JSON, bounded
            if (_content_length(scope) or 0) > REQUEST_MAX_BYTES:
                await _refuse(send, 413, REQUEST_REFUSAL)
                return
            receive.bound(REQUEST_MAX_BYTES)
        if uploading:
            if not all(self.sessions.claim(upload, user) for upload in query.get("upload_id", [])):
                await _not_found(send)  # another user's upload id: its progress is theirs
                return
            if user is not None:
                size = _content_length(scope)
                problem = ("An upload needs a Content-Length header." if size is None
                           else self.uploads.refusal(user, size, time.time()))
                if problem:
                    log.warning("refused an upload of user %r: %s", user, problem)
                    await _refuse(send, 411 if size is None else 413, problem)
                    return
            send = _owning_uploads(send, user)
        await self.app(scope, receive, _with_safe_headers(send, is_file=marker is not None))

    def _session_allowed(self, path: str, post: bool, query: dict[str, list[str]], user: str | None) -> bool:
        """A route that names a page session or a run answers only that session's or run's user."""
        match = SESSION_ROUTE.search(path)
        result = None if post else CALL_RESULT_ROUTE.search(path)
        if match is None and result is None:
            return True
        named = (result["event"] if result else None) or match["beat"] or match["media"]
        key = "upload_id" if match and match["progress"] else "session_hash"
        sessions = [named] if named else query.get(key) or [None]  # all: Gradio reads the last one
        return all(self.sessions.allows(session, user) for session in sessions)

    async def _run(self, scope: Scope, receive: Receive, send: Send, path: str, user: str | None) -> None:
        """A run whose inputs name a file handed to another user is refused, as a file route would refuse it; a run
        or cancel in another user's page session, or naming another user's run, too. A new run is its user's."""
        body = await _read_body(receive)
        if body is None:
            await _refuse(send, 413, REQUEST_REFUSAL)
            return
        try:
            request = json.loads(body or b"null")
        except (ValueError, RecursionError):
            request = None  # not JSON: Gradio answers it
        paths = list(named_files(request))
        session = request.get("session_hash") if isinstance(request, dict) else None
        if any(is_http_url_like(p) for p in paths):
            await _refuse(send, 422, URL_INPUT_REFUSAL)
            return
        if not all(may_fetch(p, user) for p in paths):
            log.warning("refused a run naming another user's file or none, from user %r", user)
            await _not_found(send)
            return
        if isinstance(session, str) and not self.sessions.claim(session, user):
            log.warning("refused a run or cancel in another user's page session, from user %r", user)
            await _not_found(send)
            return
        event = EVENT_ROUTE.search(path)
        events = [event["event"]] if event else []
        if isinstance(request, dict) and isinstance(request.get("event_id"), str):
            events.append(request["event_id"])
        if not all(self.sessions.allows(e, user) for e in events):
            log.warning("refused a request naming another user's run, from user %r", user)
            await _not_found(send)
            return
        if NEW_EVENT_ROUTE.search(path):
            send = _on_answer(send, lambda answer: self._claim_event(answer, user))
        else:  # a direct run's answer: its outputs
            root = upload_folder()
            send = _on_answer(send, lambda answer: _own_answer_files(answer, user, root))

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, _with_safe_headers(send, is_file=False))

    def _claim_event(self, answer: Any, user: str | None) -> None:
        if isinstance(answer, dict) and isinstance(answer.get("event_id"), str):
            self.sessions.claim(answer["event_id"], user)

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the attempt against the user name Gradio checks: the form's one `username`, however encoded. A form
        with two (Gradio reads the last) would put the failures on a decoy name; it is refused, as is a body
        larger than a name and a password."""
        body = await _read_body(receive, SIGN_IN_MAX_BYTES)
        user = None if body is None else await _sign_in_name(scope, body)
        if user is None:
            await _refuse(send, 400, SIGN_IN_REFUSAL)
            return
        address = (scope.get("client") or ("unknown",))[0]
        keys = [f"user:{user}", f"{ADDRESS_KEY}{address}"]
        wait = self.throttle.wait_s(keys, time.monotonic())
        if wait > 0:
            log.warning("sign-in throttled: user %r from %s waits %.1f s after repeated failures", user, address, wait)
            await asyncio.sleep(wait)
        status: list[int] = []

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        succeeded = bool(status) and status[0] < 400
        if not succeeded:
            log.warning("failed sign-in for user %r from %s", user, address)
        self.throttle.record(keys, succeeded, time.monotonic())


class RequestBody:
    """A request's `receive`, which says why its body ended early: `left` when the browser went away before sending
    all of it (a page reloaded or closed mid-upload: an ordinary event, not an error), `passed` when it went past the
    bound set by `bound` and this ended it (a disconnect), so a route that reads the whole body first (Gradio's /reset
    answers without sign-in) never holds more (a body without Content-Length)."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.most: int | None = None
        self.seen = 0
        self.left = self.passed = False

    def bound(self, most: int) -> None:
        self.most = most

    async def __call__(self) -> Message:
        if self.passed:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.left = True
            return message
        self.seen += len(message.get("body", b""))
        if self.most is not None and self.seen > self.most:
            self.passed = True
            return {"type": "http.disconnect"}
        return message


async def _read_body(receive: Receive, most: int = REQUEST_MAX_BYTES) -> bytes | None:
    """The whole request body, or None once it passes `most` bytes (the rest is not read into memory); a browser
    that leaves before sending all of it ends the request (ClientDisconnect), rather than sending on what came."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > most:
            return None
    return body


async def _sign_in_name(scope: Scope, body: bytes) -> str | None:
    """The user name of a sign-in form as Gradio's /login reads it (stripped), or None unless the form holds one
    user name and one password."""
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, replay).form(max_files=0, max_fields=8)
    except (MultiPartException, ValueError):  # a form Starlette cannot parse is no sign-in
        return None
    names, passwords = form.getlist("username"), form.getlist("password")
    if len(names) != 1 or len(passwords) != 1 or not all(isinstance(v, str) for v in (*names, *passwords)):
        return None
    return names[0].strip()


def _owning_uploads(send: Send, user: str | None) -> Send:
    """Record the files of an upload (Gradio answers with their paths) as `user`'s, before the answer leaves."""

    def register(answer: Any) -> None:
        for path in answer if isinstance(answer, list) else []:
            if isinstance(path, str):
                _register(Path(path).resolve(), user, None)

    return _on_answer(send, register)


def _own_answer_files(answer: Any, user: str | None, root: Path) -> None:
    """Files in the upload folder (`root`) that an answer names and nobody owns yet (an image a handler returned,
    which Gradio saved there) become the answer's user's: their links reach nobody else."""
    for named in named_files(answer):
        path = Path(named).resolve()
        with _lock:
            owned = str(path) in _owners
        if not owned and path.is_relative_to(root) and path.parent.name != RECORDS and path.is_file():
            _register(path, user, None, counted=False)


def _owning_streamed_files(send: Send, user: str | None) -> Send:
    """`_own_answer_files` for each message of an event stream (`data: <JSON>` lines), before it leaves."""
    root = upload_folder()

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            for line in message.get("body", b"").splitlines():
                if line.startswith(b"data:"):
                    with contextlib.suppress(ValueError, RecursionError):
                        _own_answer_files(json.loads(line[5:]), user, root)
        await send(message)

    return wrapped


def _on_answer(send: Send, read: Callable[[Any], None]) -> Send:
    """Hand a JSON answer to `read` once it is whole, before it leaves (so nothing can use it before)."""
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        with contextlib.suppress(ValueError):
            read(json.loads(b"".join(chunks) or b"null"))
        await send({**message, "body": b"".join(chunks)})

    return wrapped


def _with_safe_headers(send: Send, is_file: bool) -> Send:
    """Every response: `nosniff`. Files: inline only for images and videos, else an attachment; no scripts."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-content-type-options"]
            headers.append((b"x-content-type-options", b"nosniff"))
            if is_file:
                content_type = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
                if content_type.split(";")[0].strip().lower() not in INLINE_TYPES:
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-disposition"]
                    headers.append((b"content-disposition", b"attachment"))
                headers.append((b"content-security-policy", b"sandbox; default-src 'none'"))
            message["headers"] = headers
        await send(message)

    return wrapped


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            with contextlib.suppress(ValueError):
                return int(value)
    return None


async def _refuse(send: Send, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": text.encode()})


async def _not_found(send: Send) -> None:
    await _refuse(send, 404, "Not found.")
