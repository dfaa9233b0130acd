"""A user deletes their own finished jobs (record, inputs, results), so what they keep on a shared server can go
down before retention would delete it; nobody deletes another user's job or one still queued or running."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from engine.errors import UserInputError
from tasks import client, quota
from tasks.__main__ import main as tasks_cli
from tasks.jobs import Job, Status
from tasks.store import JobNotFound, finish_job, get_store


def stored_job(tmp_path: Path, owner: str | None, status: Status = Status.SUCCEEDED) -> Job:
    upload = tmp_path / f"part-{uuid.uuid4().hex[:6]}.png"
    upload.write_bytes(b"\x89PNG" + bytes(4000))
    store = get_store()
    job = store.create("anomaly", {"object_name": "plate"}, {"images": [(upload.name, upload)]}, owner=owner)
    if status.final:
        outputs = store.job_dir(job.id) / "outputs"
        outputs.mkdir(exist_ok=True)
        (outputs / "scores.json").write_text("{}")
        finish_job(store, job.id, status, "Done", outputs=["scores.json"])
    return store.read(job.id)


@pytest.fixture
def users() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"alice-{tag}", f"bob-{tag}"


def test_a_finished_job_is_deleted_with_its_files_and_frees_what_its_owner_keeps(tmp_path, users):
    alice, _ = users
    job = stored_job(tmp_path, alice)
    kept = quota.kept_bytes(alice)
    assert kept >= 4004
    deleted, freed = client.delete(job.id[:8], owner=alice)
    assert deleted.id == job.id and freed >= 4004 + 2  # the input and the result
    assert not get_store().job_dir(job.id).exists()
    assert quota.kept_bytes(alice) == kept - job.stored_bytes  # its whole folder was counted: input, result, record
    with pytest.raises(JobNotFound, match=f"No job {job.id[:8]}"):
        client.get(job.id[:8], owner=alice)
    assert job.id not in [j.id for j in client.list_jobs(owner=alice)]


def test_another_users_job_cannot_be_deleted_and_reads_as_missing(tmp_path, users):
    alice, bob = users
    job = stored_job(tmp_path, alice)
    for ref in (job.id, job.id[:8]):
        with pytest.raises(JobNotFound, match="No job"):
            client.delete(ref, owner=bob)
    assert client.get(job.id, owner=alice).status is Status.SUCCEEDED


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_an_unfinished_job_must_be_cancelled_first(tmp_path, users, status):
    alice, _ = users
    job = stored_job(tmp_path, alice, status)
    get_store().update(job.id, lambda record: setattr(record, "status", status))
    with pytest.raises(UserInputError, match=f"Job {job.id[:8]} is {status.value}: cancel it first"):
        client.delete(job.id, owner=alice)
    assert get_store().job_dir(job.id).exists()
    finish_job(get_store(), job.id, Status.CANCELLED, "test over")


def test_the_cli_deletes_a_job_and_says_what_it_freed(tmp_path, capsys):
    job = stored_job(tmp_path, None, Status.FAILED)
    assert tasks_cli(["delete", job.id[:8]]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["deleted"] == job.id and printed["freed_bytes"] >= 4004
    assert tasks_cli(["delete", job.id]) == 2
    assert f"No job {job.id}" in capsys.readouterr().err


def test_what_a_user_keeps_counts_the_outputs_and_record_of_each_ended_job(tmp_path, users):
    """Only inputs were counted: 210 jobs of a 1 MB record each (and any outputs) took 205 MB and counted 0.04 MB."""
    alice, _ = users
    job = stored_job(tmp_path, alice)
    record = get_store().job_dir(job.id) / "job.json"
    assert abs(job.stored_bytes - (4004 + 2 + record.stat().st_size)) < 16  # input, result, record
    assert quota.kept_bytes(alice) == job.stored_bytes


def test_two_submissions_at_once_cannot_both_pass_the_storage_bound(tmp_path, users, monkeypatch):
    """The storage check keeps what it learnt of ended records between calls: a job admitted by a concurrent
    submission (unfinished, so read each time) still counts for the next one, under the submission lock."""
    import threading
    import time

    alice, _ = users
    monkeypatch.setenv("FEWSHOT_MAX_USER_STORAGE_MB", "1")
    stored_job(tmp_path, alice)  # ended: what is kept of it is reused below
    upload = tmp_path / "big.png"
    upload.write_bytes(bytes(600_000))
    store, admitted, refused = get_store(), [], []
    quota.kept_bytes(alice)

    def submit() -> None:
        with store.submission_lock():
            try:
                quota.check_room(alice, upload.stat().st_size, "this job")
            except UserInputError:
                refused.append(True)
                return
            time.sleep(0.05)  # the other submission tries meanwhile
            admitted.append(store.create("anomaly", {}, {"images": [("big.png", upload)]}, owner=alice))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 1 and len(refused) == 1
    finish_job(store, admitted[0].id, Status.CANCELLED, "test over")
