"""Named jobs and short ids through the real job system (embedded workers): the name is checked before anything
is stored and survives the worker's updates; the short id works in the Python API and on the command line."""

from __future__ import annotations

import json

import pytest

from engine.errors import UserInputError
from tasks import client, embedded
from tasks.__main__ import main as cli
from tasks.client import Status
from tasks.store import get_store


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


def test_a_named_job_runs_and_is_found_by_its_short_id(metal_plate_images, capsys):
    params = {"object_name": "metal plate", "preset": "winclip-tiny"}
    job = client.submit("anomaly", params, metal_plate_images[:1], name="  line 3 ·  morning ")
    assert job.name == "line 3 · morning"
    done = client.wait(job.id[:8], timeout=120)  # the short id the page shows
    assert done.id == job.id and done.status is Status.SUCCEEDED, done.error
    assert done.name == "line 3 · morning"  # the worker's updates keep it
    assert client.artifact_path(job.id[:6], "scores.json").is_file()

    assert cli(["status", job.id[:8]]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "line 3 · morning"
    assert cli(["submit", "anomaly", str(metal_plate_images[1]), "--param", "object_name=plate", "--param",
                "preset=winclip-tiny", "--name", "from the command line", "--wait", "120"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["name"] == "from the command line" and record["status"] == "succeeded"


def test_a_bad_name_is_refused_before_anything_is_stored(metal_plate_images):
    before = len(get_store().list(limit=None))
    with pytest.raises(UserInputError, match="at most 80 characters"):
        client.submit("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, metal_plate_images[:1],
                      name="n" * 200)
    assert len(get_store().list(limit=None)) == before
