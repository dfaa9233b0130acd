"""A completion job submitted from another process to a real redis-server and celery worker process."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from tasks import client
from tasks.client import Status
from tests.conftest import REPO
from tests.integration.conftest import env_for

pytestmark = pytest.mark.redis


def test_completion_job_runs_on_a_separate_worker(redis_url, worker, shared_data, tmp_path):
    root = shared_data / "detection" / "deeppcb"
    coco = json.loads((root / "annotations.json").read_text())
    images = coco["images"][:2]
    ids = {image["id"] for image in images}
    annotations = [a for a in coco["annotations"] if a["image_id"] in ids][::2]
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:  # one zip: images and annotations travel as one input
        for image in images:
            bundle.write(root / "images" / image["file_name"], f"images/{image['file_name']}")
        bundle.writestr("annotations.json", json.dumps({**coco, "images": images, "annotations": annotations}))
    done = subprocess.run([sys.executable, "-m", "tasks", "submit", "completion", str(archive),
                           "--param=preset=completion-tiny", "--param=score_threshold=0.5"],
                          cwd=REPO, env=env_for(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    job = client.wait(json.loads(done.stdout)["id"], timeout=120)
    assert job.status is Status.SUCCEEDED, (job.error, worker.read_text()[-3000:])
    assert job.worker.startswith("test-worker@") and job.id in worker.read_text()
    assert job.result["images"] == 2 and job.result["existing_boxes"] == len(annotations)
    assert client.artifact_path(job.id, "completed_voc.zip").is_file()
