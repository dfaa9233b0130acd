"""Cancel on a job that has already ended says so (the unchanged status line looked like no answer)."""

from __future__ import annotations

from tasks.jobs import Status
from tasks.store import finish_job, get_store
from webapp import jobs_tab, views


def test_cancel_on_an_ended_job_says_there_was_nothing_to_cancel() -> None:
    store = get_store()
    job = store.create("anomaly", {}, {})
    finish_job(store, job.id, Status.SUCCEEDED, "Done")
    answers = list(views.cancelling()(job.id))
    assert len(answers) == 1 and answers[0].endswith(f"Nothing to cancel: job {job.id[:8]} had already ended "
                                                      "(succeeded).")
    assert jobs_tab.cancel_job(job.id).endswith("had already ended (succeeded).")
    assert store.read(job.id).status is Status.SUCCEEDED
