"""Artifact store: records that survive restarts, safe names, guarded ids, cancel flags."""

from __future__ import annotations

import pytest

from tasks.jobs import Status
from tasks.named_folders import owner_key
from tasks.store import ArtifactStore, JobNotFound, safe_filename


def test_records_and_inputs_survive_a_new_store_instance(tmp_path):
    source = tmp_path / "part.png"
    source.write_bytes(b"pixels")
    store = ArtifactStore(tmp_path / "store")
    job = store.create("anomaly", {"object_name": "bottle"}, {"images": [("part.png", source)]})
    assert job.status is Status.QUEUED and job.inputs == ["images/000_part.png"]

    reopened = ArtifactStore(tmp_path / "store")
    again = reopened.read(job.id)
    assert again.params == {"object_name": "bottle"} and again.created_at == job.created_at
    assert reopened.input_path(job.id, job.inputs[0]).read_bytes() == b"pixels"
    assert [j.id for j in reopened.list()] == [job.id]


def test_update_is_read_modify_write(tmp_path):
    store = ArtifactStore(tmp_path)
    job = store.create("anomaly", {}, {})

    def start(record):
        record.status = Status.RUNNING

    store.update(job.id, start)
    assert store.read(job.id).status is Status.RUNNING


@pytest.mark.parametrize("job_id", ["../../etc", "abc", "0" * 31 + "/", "A" * 32])
def test_job_ids_cannot_escape_the_store(tmp_path, job_id):
    with pytest.raises(JobNotFound):
        ArtifactStore(tmp_path).read(job_id)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"), (".hidden", "hidden"),
     ("a b;c.png", "a_b_c.png"), ("", "file")],
)
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_cancel_flag(tmp_path):
    store = ArtifactStore(tmp_path)
    job = store.create("anomaly", {}, {})
    assert not store.cancel_requested(job.id)
    store.request_cancel(job.id)
    assert store.cancel_requested(job.id)


def test_list_is_newest_first_and_skips_broken_records(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.create("anomaly", {}, {})
    second = store.create("anomaly", {}, {})
    (store.jobs_dir / "not-a-job").mkdir()
    assert [j.id for j in store.list()][:2] in ([second.id, first.id], [first.id, second.id])
    assert len(store.list()) == 2


def test_display_names_are_kept_as_given_and_same_names_told_apart(tmp_path):
    source = tmp_path / "x.png"
    source.write_bytes(b"pixels")
    long_name = "é" * 125 + ".png"  # 254 bytes
    names = ["my part 1.png", "café.png", "部品 1.png", long_name, "000.png", "000.png", "clip 1.mp4"]
    store = ArtifactStore(tmp_path / "store")
    job = store.create("anomaly", {}, {"images": [(n, source) for n in names[:-1]], "video": [(names[-1], source)]})
    shown = [name for name, _ in store.input_files(store.read(job.id), "images")]
    assert shown == ["my part 1.png", "café.png", "部品 1.png", long_name, "000.png", "000 (2).png"]
    (video,) = store.input_files(job, "video")
    assert video[0] == "clip 1.mp4" and video[1].suffix == ".mp4" and video[1].read_bytes() == b"pixels"
    assert all(len(stored.encode()) < 200 for stored in job.inputs)


def test_outputs_are_found_under_the_key_written_and_nothing_outside(tmp_path):
    store = ArtifactStore(tmp_path)
    job = store.create("anomaly", {}, {})
    key = "000_部品_1_map.png"
    (store.job_dir(job.id) / "outputs" / key).write_bytes(b"map")
    assert store.output_path(job.id, key).read_bytes() == b"map"
    for bad in ["../job.json", "a/b.png", "..", ".lock", "", "x" * 256]:
        with pytest.raises(JobNotFound):
            store.output_path(job.id, bad)


def test_active_jobs_are_read_without_reading_the_finished_ones(tmp_path, monkeypatch):
    """A queued job's place in line and the queue limits read the unfinished jobs only, however many finished jobs
    the store keeps; a job that ends, is deleted or was left by a store from before the index is right."""
    from tasks.store import finish_job

    store = ArtifactStore(tmp_path)
    finished = [store.create("anomaly", {}, {}) for _ in range(30)]
    for job in finished:
        finish_job(store, job.id, Status.SUCCEEDED, "Done")
    queued, running, deleted = (store.create("anomaly", {}, {}) for _ in range(3))
    store.update(running.id, lambda record: setattr(record, "status", Status.RUNNING))
    finish_job(store, deleted.id, Status.FAILED, "Failed")
    store.delete(deleted.id)
    reads: list[str] = []
    original = ArtifactStore.read
    monkeypatch.setattr(ArtifactStore, "read", lambda self, job_id: reads.append(job_id) or original(self, job_id))
    assert [job.id for job in store.active()] == [running.id, queued.id]  # most recent first
    assert sorted(reads) == sorted([queued.id, running.id])  # no finished record was read
    finish_job(store, running.id, Status.CANCELLED, "Cancelled")
    assert [job.id for job in store.active()] == [queued.id]

    older = ArtifactStore(tmp_path / "older")  # a store written before the index: scanned once
    left = older.create("anomaly", {}, {})
    done = older.create("anomaly", {}, {})
    finish_job(older, done.id, Status.SUCCEEDED, "Done")
    for mark in older.active_marks.folder.iterdir():
        mark.unlink()
    assert [job.id for job in older.active()] == [left.id]
    reads.clear()
    assert [job.id for job in older.active()] == [left.id] and reads == [left.id]


def test_a_users_jobs_are_read_without_reading_other_users_records(tmp_path, monkeypatch):
    """One user's Jobs table and storage quota read their own records only; a store from before the marks is
    scanned once; a deleted job leaves no mark behind."""
    store = ArtifactStore(tmp_path)
    others = [store.create("anomaly", {}, {}, owner=f"user {n}") for n in range(20)]
    mine = [store.create("anomaly", {}, {}, owner="ålice/../x") for _ in range(3)]
    store.create("anomaly", {}, {})  # a local job: nobody's
    store.delete(mine[0].id)
    reads: list[str] = []
    original = ArtifactStore.read
    monkeypatch.setattr(ArtifactStore, "read", lambda self, job_id: reads.append(job_id) or original(self, job_id))
    assert [job.id for job in store.owned("ålice/../x")] == [mine[2].id, mine[1].id]
    assert set(reads) <= {job.id for job in mine}  # nobody else's record was read
    assert [job.id for job in store.owned("user 7")] == [others[7].id] and store.owned("bob") == []

    for mark in store.owner_marks.folder.rglob("*"):  # a store from before the marks
        if mark.is_file():
            mark.unlink()
    assert [job.id for job in store.owned("user 3")] == [others[3].id]
    reads.clear()
    assert [job.id for job in store.owned("ålice/../x")] == [mine[2].id, mine[1].id]
    assert sorted(reads) == sorted([mine[1].id, mine[2].id])


def test_a_job_being_created_keeps_its_marks_while_its_record_is_not_written_yet(tmp_path):
    """Marks come before the record: a reader in between (a status poll while another request submits) must not
    drop them, or the new job would be missing from its owner's table and from the queue for good."""
    import os
    import time
    import uuid

    store = ArtifactStore(tmp_path)
    coming = uuid.uuid4().hex
    store.active_marks.add(coming)
    store.owner_marks.add(coming, owner_key("alice"))
    assert store.active() == [] and store.owned("alice") == []
    assert coming in store.active_marks.ids() and coming in store.owner_marks.ids(owner_key("alice"))
    old = time.time() - 120  # a record that never came: a job deleted meanwhile
    os.utime(store.active_marks.folder / coming, (old, old))
    os.utime(store.owner_marks.folder / owner_key("alice") / coming, (old, old))
    assert store.active() == [] and store.owned("alice") == []
    assert coming not in store.active_marks.ids() and coming not in store.owner_marks.ids(owner_key("alice"))


def counted_reads(monkeypatch) -> list[str]:
    """The ids of the records parsed in full from now on (ArtifactStore.read)."""
    reads: list[str] = []
    original = ArtifactStore.read
    monkeypatch.setattr(ArtifactStore, "read", lambda self, job_id: reads.append(job_id) or original(self, job_id))
    return reads


def ended_jobs(store: ArtifactStore, owner: str, count: int) -> list:
    """`count` of `owner`'s jobs that ended, oldest first, each with an input file."""
    from tasks.store import finish_job

    upload = store.root / "upload.png"
    upload.write_bytes(bytes(1000))
    jobs = [store.create("anomaly", {}, {"images": [("part.png", upload)]}, owner=owner) for _ in range(count)]
    for job in jobs:
        finish_job(store, job.id, Status.SUCCEEDED, "Done")
    return [store.read(job.id) for job in jobs]


def test_a_users_jobs_table_parses_only_its_rows_and_no_unchanged_ended_record_twice(tmp_path, monkeypatch):
    """A user with 210 ended jobs had every Jobs-table refresh and every storage check parse all 210 records
    (0.4-0.7 s): the rows shown are parsed, the others' order and size are kept while their files are unchanged."""
    from tasks.store import EndedRecords

    store = ArtifactStore(tmp_path, EndedRecords())
    ended = ended_jobs(store, "alice", 12)
    queued = store.create("anomaly", {}, {}, owner="alice")
    ended_jobs(store, "bob", 3)
    newest = [queued, *reversed(ended)]
    reads = counted_reads(monkeypatch)
    assert [job.id for job in store.owned("alice", limit=4)] == [job.id for job in newest[:4]]
    assert store.owned_bytes("alice") == sum(job.stored_bytes for job in ended)
    reads.clear()
    assert [job.id for job in store.owned("alice", limit=4)] == [job.id for job in newest[:4]]
    assert sorted(reads) == sorted(job.id for job in newest[:4])  # the rows shown only
    reads.clear()
    assert store.owned_bytes("alice") == sum(job.stored_bytes for job in ended) and reads == [queued.id]
    assert [job.id for job in store.owned("alice")] == [job.id for job in newest]  # all of them, in order


def test_what_is_kept_of_ended_records_follows_their_files_and_starts_over_in_a_new_process(tmp_path, monkeypatch):
    """A record renamed or rewritten (here or by another process), a job deleted, a new job, a restart: the listing
    and the storage check say what the files say."""
    from tasks.store import EndedRecords, finish_job

    ended_records = EndedRecords()
    store = ArtifactStore(tmp_path, ended_records)
    first, second, third = ended_jobs(store, "alice", 3)
    kept = store.owned_bytes("alice")
    assert kept == first.stored_bytes + second.stored_bytes + third.stored_bytes and len(ended_records) == 3

    store.update(second.id, lambda record: setattr(record, "name", "line 3"))
    assert store.owned("alice", limit=2)[1].name == "line 3"
    record = store.job_dir(third.id) / "job.json"  # another process's write: same size, same record otherwise
    record.write_text(record.read_text().replace(f'"stored_bytes": {third.stored_bytes}',
                                                 f'"stored_bytes": {third.stored_bytes + 1}'))
    assert store.owned_bytes("alice") == kept + 1

    store.delete(first.id)
    assert store.owned_bytes("alice") == kept + 1 - first.stored_bytes
    assert [job.id for job in store.owned("alice")] == [third.id, second.id] and len(ended_records) == 2

    upload = tmp_path / "new.png"
    upload.write_bytes(bytes(5000))
    coming = store.create("anomaly", {}, {"images": [("new.png", upload)]}, owner="alice")  # counted as it comes
    assert store.owned_bytes("alice") == kept + 1 - first.stored_bytes + 5000
    finish_job(store, coming.id, Status.FAILED, "Failed")
    total = kept + 1 - first.stored_bytes + store.read(coming.id).stored_bytes
    assert store.owned_bytes("alice") == total

    reads = counted_reads(monkeypatch)
    restarted = ArtifactStore(tmp_path, EndedRecords())  # a new process: nothing kept, all read from disk once
    assert restarted.owned_bytes("alice") == total and len(reads) == 3
    assert [job.id for job in restarted.owned("alice")] == [coming.id, third.id, second.id]


def test_at_most_the_bound_of_ended_records_is_kept(tmp_path):
    from tasks.store import EndedRecords

    ended_records = EndedRecords(most=3)
    store = ArtifactStore(tmp_path, ended_records)
    jobs = ended_jobs(store, "alice", 5)
    assert store.owned_bytes("alice") == sum(job.stored_bytes for job in jobs) and len(ended_records) == 3
    assert [job.id for job in store.owned("alice", limit=2)] == [jobs[4].id, jobs[3].id]
