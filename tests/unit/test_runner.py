"""The job state machine without a broker: every way a job can end, and the message it leaves."""

from __future__ import annotations

import pytest
import torch
from celery.exceptions import SoftTimeLimitExceeded

from engine.errors import UserInputError
from engine.loading import MODEL_CACHE
from engine.progress import Cancelled
from tasks.jobs import Status
from tasks.runner import run_job
from tasks.store import get_store


@pytest.fixture
def job():
    return get_store().create("anomaly", {}, {})


def ends_as(job_id, body):
    run_job(job_id, body, worker="unit@test")
    return get_store().read(job_id)


def test_success_records_result_outputs_and_times(job):
    done = ends_as(job.id, lambda ctx: ({"answer": 42}, ["a.png"]))
    assert done.status is Status.SUCCEEDED and done.result == {"answer": 42} and done.outputs == ["a.png"]
    assert done.worker == "unit@test" and done.attempts == 1 and done.started_at <= done.finished_at


def test_user_errors_become_the_job_message(job):
    def body(ctx):
        raise UserInputError("part.png: not an image")

    done = ends_as(job.id, body)
    assert done.status is Status.FAILED and done.error == "part.png: not an image"


def test_bugs_fail_the_job_without_a_traceback(job):
    def body(ctx):
        raise KeyError("boom")

    done = ends_as(job.id, body)
    assert done.status is Status.FAILED and done.error.startswith("Internal error while running this job (reference ")
    assert "Traceback" not in done.error and "KeyError" not in done.error and "boom" not in done.error


def test_time_limit_says_which_setting(job):
    def body(ctx):
        raise SoftTimeLimitExceeded

    assert "FEWSHOT_JOB_TIME_LIMIT" in ends_as(job.id, body).error


def test_cancel_is_seen_at_the_next_progress_report(job):
    def body(ctx):
        ctx.progress(0.1, "step 1")
        get_store().request_cancel(job.id)
        ctx.progress(0.2, "step 2")
        raise AssertionError("should have stopped")

    done = ends_as(job.id, body)
    assert done.status is Status.CANCELLED and done.progress == pytest.approx(0.1)


def test_a_repeated_delivery_of_a_finished_job_does_nothing(job):
    ends_as(job.id, lambda ctx: ({}, []))

    def body(ctx):
        raise AssertionError("must not run twice")

    again = ends_as(job.id, body)
    assert again.status is Status.SUCCEEDED and again.attempts == 1


def test_progress_is_clamped_and_reported(job):
    def body(ctx):
        ctx.progress(1.7, "over")
        assert get_store().read(job.id).progress == 1.0
        raise Cancelled

    assert ends_as(job.id, body).status is Status.CANCELLED


def worker_died_under(job_id: str, attempts: int) -> None:
    """The record a killed worker process leaves: still running, `attempts` runs started."""

    def running(record):
        record.status, record.attempts = Status.RUNNING, attempts

    get_store().update(job_id, running)


def test_a_redelivered_running_job_runs_again_until_it_stopped_its_worker_max_attempts_times(job):
    worker_died_under(job.id, 1)
    assert ends_as(job.id, lambda ctx: ({}, [])).attempts == 2  # FEWSHOT_MAX_ATTEMPTS defaults to 2
    again = get_store().create("anomaly", {}, {})
    worker_died_under(again.id, 2)

    def body(ctx):
        raise AssertionError("must not run a third time")

    failed = ends_as(again.id, body)
    assert failed.status is Status.FAILED and failed.attempts == 2
    assert "stopped twice before the job ended" in failed.error and "smaller" in failed.error


def test_a_redelivery_after_a_cancel_request_ends_cancelled_at_once(job):
    worker_died_under(job.id, 1)
    get_store().request_cancel(job.id)

    def body(ctx):
        raise AssertionError("must not run")

    assert ends_as(job.id, body).status is Status.CANCELLED


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 8.00 GiB for an array with shape (8, 2**30)"),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total capacity)"),
    RuntimeError("MPS backend out of memory (MPS allocated: 17.9 GB, other allocations: 40.1 MB)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory"),
])
def test_running_out_of_device_memory_fails_the_job_with_what_to_change_and_unloads_models(job, error):
    MODEL_CACHE.get(("a model", "held"), lambda: torch.zeros(4))

    def body(ctx):
        raise error

    done = ends_as(job.id, body)
    assert done.status is Status.FAILED and done.error.startswith("The device ran out of memory on this job")
    assert str(error).split("\n")[0][:40] in done.error
    assert "smaller" in done.error and "The worker keeps serving" in done.error and "Traceback" not in done.error
    assert MODEL_CACHE.get(("a model", "held"), lambda: "reloaded") == "reloaded"  # unloaded for the next job
    after = get_store().create("anomaly", {}, {})
    assert ends_as(after.id, lambda ctx: ({"ok": True}, [])).status is Status.SUCCEEDED


def test_other_runtime_errors_are_not_taken_for_out_of_memory(job):
    def body(ctx):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")

    error = ends_as(job.id, body).error
    assert error.startswith("Internal error while running this job") and "mat1" not in error
