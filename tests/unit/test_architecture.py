"""Layering rules of DEVELOPERS.md that a refactor could silently break."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def modules_loaded_by(imports: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has loaded after `import <imports>`."""
    code = f"import sys, {imports}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [name for name in done.stdout.strip().split(",") if name]


def test_the_web_process_imports_no_torch_until_a_job_runs():
    assert modules_loaded_by("webapp.app, tasks.client", ("torch", "open_clip")) == []


def test_engine_imports_neither_celery_nor_gradio():
    imports = "engine.anomaly, engine.anomaly.outputs, engine.media, engine.loading"
    assert modules_loaded_by(imports, ("celery", "gradio", "tasks", "webapp")) == []
