"""Lanes (tasks.registry) and the job-process memory limit, as the web side and the workers read them."""

from __future__ import annotations

import os
import re

import pytest

from tasks import client
from tasks.celery_app import app
from tasks.config import get_settings, job_memory_limit_mb
from tasks.jobs import Status
from tasks.registry import LANES, TOOLS
from tasks.store import finish_job, get_store
from webapp.views import status_markdown


def test_every_tool_has_a_registered_task_and_a_lane_routed_to_its_queue():
    app.loader.import_default_modules()
    settings = get_settings()
    for tool in TOOLS.values():
        assert tool.task in app.tasks and tool.lane in LANES
        assert app.amqp.router.route({}, tool.task)["queue"].name == settings.queue_for(tool.lane)
    assert {TOOLS["anomaly"].lane, TOOLS["finetune_classify"].lane} == {"quick", "long"}


def test_jobs_ahead_counts_queued_jobs_of_the_same_lane_submitted_before(monkeypatch):
    store = get_store()
    created = [store.create(tool, {}, {}) for tool in ("anomaly", "finetune_classify", "completion", "anomaly")]
    for job in created:
        store.update(job.id, lambda record, lane=TOOLS[job.tool].lane: setattr(record, "lane", lane))
    before = client.jobs_ahead(client.get(created[3].id))
    try:
        finish_job(store, created[0].id, Status.CANCELLED, "test over")
        assert client.jobs_ahead(client.get(created[3].id)) == before - 1
        assert client.jobs_ahead(client.get(created[1].id)) < before  # the long lane has its own line
        assert f"· {before - 1} job{'s' if before > 2 else ''} ahead" in status_markdown(client.get(created[3].id))
        for job in created[1:3]:
            finish_job(store, job.id, Status.CANCELLED, "test over")
        assert client.jobs_ahead(client.get(created[3].id)) == before - 2
        monkeypatch.setattr(client, "queue_position", lambda job: client.QueuePosition(running=(), ahead=()))
        assert "next in line" in status_markdown(client.get(created[3].id))
    finally:
        for job in created:
            finish_job(store, job.id, Status.CANCELLED, "test over")


@pytest.mark.parametrize(("env", "expected"), [
    ({"FEWSHOT_JOB_MEMORY_MB": "6000"}, 6000),
    ({"FEWSHOT_JOB_MEMORY_MB": "0"}, 0),
    ({"FEWSHOT_JOB_MEMORY_MB": "auto", "FEWSHOT_DEVICE": "cuda:1"}, 0),  # CUDA reserves address space
    ({"FEWSHOT_DEVICE": "cpu"}, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20),
])
def test_job_memory_limit(monkeypatch, env, expected):
    monkeypatch.delenv("FEWSHOT_JOB_MEMORY_MB", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert job_memory_limit_mb() == expected


def test_a_missing_input_file_is_named_without_the_server_path(tmp_path):
    gone = tmp_path / "uploads" / "4f2a9c" / "plate.png"
    with pytest.raises(client.UserInputError) as refused:
        client.submit("anomaly", {"object_name": "plate"}, {"images": [str(gone)]})
    assert str(refused.value).startswith("plate.png: no such file") and str(tmp_path) not in str(refused.value)


def test_a_training_with_a_bad_model_name_is_refused_before_a_job_is_stored(tmp_path):
    image = tmp_path / "nut.png"
    image.write_bytes(b"\x89PNG")
    store = get_store()
    before = len(list(store.jobs_dir.iterdir()))
    with pytest.raises(client.UserInputError, match=re.escape("Model name '../x' is not accepted")):
        client.submit("finetune_classify", {"model_name": "../x", "class_names": ["nut", "bolt"]},
                      {"class_000": [image], "class_001": [image]})
    assert len(list(store.jobs_dir.iterdir())) == before


def test_a_long_object_name_is_refused_before_a_job_is_stored(tmp_path):
    """Each 1,000,000-character name was stored in a 1 MB job record and refused by the worker: a user filled the
    disk at 1 job a second, none of it counted."""
    image = tmp_path / "plate.png"
    image.write_bytes(b"\x89PNG")
    store = get_store()
    before = len(list(store.jobs_dir.iterdir()))
    with pytest.raises(client.UserInputError, match="The object name has 1,000,000 characters; at most 60"):
        client.submit("anomaly", {"object_name": "x" * 1_000_000}, {"images": [image]})
    assert len(list(store.jobs_dir.iterdir())) == before
