"""Ids people can use: a job opens by the short id the page shows (a unique prefix among one's own jobs), an
ambiguous one says so, jobs can be named; a queued job says what runs before it, by kind only."""

from __future__ import annotations

import time
import types
import uuid

import pytest

from engine.errors import UserInputError
from tasks import client
from tasks import store as store_module
from tasks.jobs import Job, Status
from tasks.registry import TOOLS
from tasks.store import finish_job, get_store
from webapp.views import JOB_KINDS, JOB_TABLE_HEADERS, job_rows, kinds_text, queue_text, status_markdown


@pytest.fixture
def make_job(monkeypatch):
    """Store a job with a chosen id (and owner, tool, lane); every one made is cancelled at the end."""
    made: list[str] = []

    def make(job_id: str, owner: str | None = None, tool: str = "anomaly", lane: str | None = None,
             status: Status = Status.QUEUED) -> Job:
        fixed_id = types.SimpleNamespace(uuid4=lambda: types.SimpleNamespace(hex=job_id))
        monkeypatch.setattr(store_module, "uuid", fixed_id)
        job = get_store().create(tool, {}, {}, owner=owner)
        made.append(job.id)

        def place(record: Job) -> None:
            record.lane, record.status = lane, status
            if status is Status.RUNNING:
                record.started_at = time.time()

        return get_store().update(job.id, place)

    yield make
    for job_id in made:
        if not get_store().read(job_id).status.final:
            finish_job(get_store(), job_id, Status.CANCELLED, "test over")


@pytest.fixture
def prefix() -> str:
    """8 hex characters no other job of the test store starts with."""
    return uuid.uuid4().hex[:8]


def test_the_short_id_shown_opens_the_job(make_job, prefix):
    job = make_job(prefix + "0" * 24, owner="alice")
    assert f"job `{prefix}`" in status_markdown(job)  # what the page shows...
    for ref in (prefix, prefix[:4], job.id, f"  {prefix.upper()} "):  # ...opens it, as do longer and shorter ones
        assert client.get(ref, owner="alice").id == job.id
    assert client.cancel(prefix, owner="alice").status is Status.CANCELLED
    assert get_store().read(job.id).status is Status.CANCELLED


def test_an_ambiguous_prefix_says_so_and_counts_only_ones_own_jobs(make_job, prefix):
    first, second = make_job(prefix + "1" * 24, owner="alice"), make_job(prefix + "2" * 24, owner="alice")
    bobs = make_job(prefix + "3" * 24, owner="bob")
    with pytest.raises(client.AmbiguousJobId, match=f"^2 jobs start with {prefix}: give more characters.$"):
        client.get(prefix, owner="alice")
    assert client.get(prefix + "1", owner="alice").id == first.id
    assert client.get(prefix + "2", owner="alice").id == second.id
    assert client.get(prefix, owner="bob").id == bobs.id  # alice's jobs are not bob's: his prefix is unique
    with pytest.raises(client.JobNotFound, match=f"^No job {prefix}3.$"):
        client.get(prefix + "3", owner="alice")  # another user's job does not exist, by prefix...
    with pytest.raises(client.JobNotFound, match=f"^No job {bobs.id}.$"):
        client.get(bobs.id, owner="alice")  # ...or by its full id
    with pytest.raises(client.AmbiguousJobId, match=r"^3 jobs start with"):
        client.get(prefix)  # without an owner (the command line, a local app): every job counts


def test_looking_up_another_users_job_reads_none_of_their_records(make_job, prefix, monkeypatch):
    """Refusing bob's job to alice read its record first (75 µs against 38 for no job at all): the time told her
    that someone had a job of that prefix. Her look-ups now read her own marks and records only."""
    bobs = make_job(prefix + "3" * 24, owner="bob")
    alices = make_job(prefix + "4" * 24, owner="alice")
    read = []
    original = store_module.ArtifactStore.read
    monkeypatch.setattr(store_module.ArtifactStore, "read", lambda self, job_id: read.append(job_id) or
                        original(self, job_id))
    for ref in (prefix + "3", bobs.id, prefix + "5", prefix + "5" * 24):
        with pytest.raises(client.JobNotFound, match=f"^No job {ref}.$"):
            client.get(ref, owner="alice")
    assert bobs.id not in read
    assert client.get(prefix, owner="alice").id == alices.id  # her own, by the prefix bob's job shares


@pytest.mark.parametrize(("ref", "expected"), [
    ("abc", "No job abc: give at least 4 characters of its id."),
    ("line-3", "No job line-3."),
    (" ", "No job id given: give its id or its first 4 characters or more."),
    ("f" * 32, f"No job {'f' * 32}."),
    ("a" * 5000, f"No job {'a' * 59}…."),  # not echoed back whole
    ("x/" * 3000, f"No job {'x/' * 29}x…."),
])
def test_an_id_that_names_no_job_says_so(ref, expected):
    with pytest.raises(client.JobNotFound) as raised:
        client.get(ref)
    assert str(raised.value) == expected


def test_a_job_can_be_named_and_renamed_by_its_owner_only(make_job, prefix):
    job = make_job(prefix + "4" * 24, owner="alice")
    assert client.rename(prefix, "  line 3\n night  shift ", owner="alice").name == "line 3 night shift"
    assert get_store().read(job.id).name == "line 3 night shift"
    line = status_markdown(client.get(job.id))
    assert f"job `{prefix}` · **line 3 night shift**" in line
    with pytest.raises(client.JobNotFound, match="No job"):
        client.rename(job.id, "mine now", owner="bob")
    with pytest.raises(UserInputError, match="at most 80 characters; this one has 81"):
        client.rename(job.id, "x" * 81, owner="alice")
    with pytest.raises(UserInputError, match="control characters"):
        client.rename(job.id, "bell\x07", owner="alice")
    assert get_store().read(job.id).name == "line 3 night shift"  # refused names change nothing
    assert client.rename(job.id, " ", owner="alice").name is None


def test_a_name_is_shown_as_typed_in_the_status_line_and_last_in_the_table(make_job, prefix):
    job = make_job(prefix + "5" * 24)
    job = client.rename(job.id, "`x` <b>bold</b> [a](javascript:1)")
    assert "\\`x\\` &lt;b&gt;bold&lt;/b&gt; \\[a\\](javascript:1)" in status_markdown(job)
    assert JOB_TABLE_HEADERS[:7] == ["job", "tool", "status", "progress", "message", "created", "seconds"]
    assert JOB_TABLE_HEADERS[-1] == "name" and job_rows([job])[0][-1] == job.name and job_rows([job])[0][0] == job.id


def test_a_queued_job_knows_what_runs_before_it_in_its_lane(make_job, prefix):
    lane = f"lane-{prefix}"  # a lane of its own: other tests' jobs do not count
    running = make_job(prefix + "6" * 24, owner="bob", tool="finetune_classify", lane=lane, status=Status.RUNNING)
    client.rename(running.id, "bob's secret project")
    older = make_job(prefix + "7" * 24, owner="bob", tool="anomaly", lane=lane)
    mine = make_job(prefix + "8" * 24, owner="alice", tool="insertion", lane=lane)
    newer = make_job(prefix + "9" * 24, owner="carol", tool="anomaly", lane=lane)
    make_job(prefix + "a" * 24, tool="anomaly", lane=f"other-{lane}")  # another lane: its own line
    position = client.queue_position(mine)
    assert position == client.QueuePosition(running=("finetune_classify",), ahead=("anomaly",))
    assert client.jobs_ahead(mine) == 1 and client.jobs_ahead(newer) == 2
    line = status_markdown(mine)
    assert line.endswith("· 2 jobs ahead: 1 classifier training, 1 inspection")
    assert "secret" not in line and "bob" not in line  # kinds only: nothing of other users' jobs
    finish_job(get_store(), older.id, Status.CANCELLED, "test over")
    assert status_markdown(client.get(mine.id)).endswith("· next in line · behind 1 classifier training")
    finish_job(get_store(), running.id, Status.SUCCEEDED, "Done")
    assert status_markdown(client.get(mine.id)).endswith("· next in line")


@pytest.mark.parametrize(("running", "ahead", "expected"), [
    ((), (), "next in line"),
    (("anomaly",), (), "next in line · behind 1 inspection"),
    (("finetune_detect",), ("anomaly",), "2 jobs ahead: 1 detector training, 1 inspection"),
    ((), ("completion",), "1 job ahead: 1 annotation completion"),
    (("insertion",), ("anomaly", "insertion", "anomaly"), "4 jobs ahead: 2 insertions, 2 inspections"),
])
def test_queue_text(running, ahead, expected):
    assert queue_text(client.QueuePosition(running=running, ahead=ahead)) == expected


def test_every_tool_has_a_kind_people_understand():
    assert set(JOB_KINDS) == set(TOOLS)
    assert kinds_text(["finetune_predict", "finetune_predict", "anomaly_video"]) == "2 predictions, 1 video inspection"
