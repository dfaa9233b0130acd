"""Layering rules of DEVELOPERS.md that a refactor could silently break."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_the_web_process_imports_no_torch_until_a_job_runs():
    code = ("import sys, webapp.app, tasks.client; "
            "print([m for m in ('torch', 'open_clip') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_engine_imports_neither_celery_nor_gradio():
    code = ("import sys, engine.anomaly, engine.anomaly.outputs, engine.media, engine.loading; "
            "print([m for m in ('celery', 'gradio', 'tasks', 'webapp') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
