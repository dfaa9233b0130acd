"""The Blocks app: one tab per tool and a Jobs tab; `launch()` serves it."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from tasks import retention
from tasks.config import get_settings
from webapp import (
    anomaly_tab,
    completion_tab,
    file_sizes,
    finetune_tab,
    insertion_tab,
    jobs_tab,
    reattach,
    saved_items,
    serving,
    views,
)
from webapp.bounded_pictures import bound_picture_decoding
from webapp.pending_edits import bound_pending_edits
from webapp.request_errors import explain_errors


def build_app() -> gr.Blocks:
    bound_picture_decoding()
    bound_pending_edits()
    explain_errors()
    settings = get_settings()
    mode = ("jobs run in worker processes this app starts (embedded mode)" if settings.embedded
            else f"jobs go through {settings.broker_display} to Celery workers")
    with gr.Blocks(title="fewshot-studio") as demo:
        gr.Markdown(f"# fewshot-studio\nFew-shot computer vision on your own images · {mode}.")
        with gr.Tabs(elem_id="tool-tabs") as tabs:
            with gr.Tab("Anomaly segmentation", id="anomaly"):
                anomaly_tab.build()
            with gr.Tab("Annotation completion", id="completion"):
                completion_tab.build()
            with gr.Tab("Object insertion", id="insertion"):
                insertion_tab.build()
            with gr.Tab("Few-shot fine-tuning", id="finetune"):
                finetune_tab.build()
            with gr.Tab("Jobs", id=reattach.JOBS_TAB):
                jobs_tab.build()
        reattach.select_tab_on_load(tabs)  # the tab of the job in the page's address (?job=), if any
        saved_items.refresh_on_tab_change(tabs)
    return demo


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def load_users() -> dict[str, str]:
    """Accounts of a shared instance: FEWSHOT_AUTH="alice:pw,bob:pw" and/or FEWSHOT_AUTH_FILE (one
    `user:password` per line, `#` comments). None configured: no sign-in (local use)."""
    entries = [e for e in os.environ.get("FEWSHOT_AUTH", "").split(",") if e.strip()]
    path = os.environ.get("FEWSHOT_AUTH_FILE")
    if path:
        try:
            lines = Path(path).expanduser().read_text().splitlines()
        except OSError as exc:
            raise SystemExit(f"FEWSHOT_AUTH_FILE={path} cannot be read ({exc.strerror}).") from None
        entries += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    users = {}
    for entry in entries:
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"Bad account entry {user or entry.strip()!r}: write user:password.")
        users[user] = password
    return users


def check_password(users: dict[str, str]):
    def check(username: str, password: str) -> bool:
        expected = users.get(username)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    return check


def refuse_open_listening(host: str, users: dict[str, str]) -> None:
    """Exit when the app would listen beyond this machine without accounts (FEWSHOT_ALLOW_ANONYMOUS=1 allows it),
    so that nobody serves everyone's jobs to the network by accident."""
    if host not in LOOPBACK_HOSTS and not users and os.environ.get("FEWSHOT_ALLOW_ANONYMOUS") != "1":
        raise SystemExit(f"Refusing to listen on {host} without sign-in: set FEWSHOT_AUTH or FEWSHOT_AUTH_FILE "
                         "(or FEWSHOT_ALLOW_ANONYMOUS=1 for an open demo).")


def launch(prevent_thread_lock: bool = False, **overrides) -> gr.Blocks:
    """Serve the app; in embedded mode, start its supervised worker processes first.

    With accounts configured, every page and file needs sign-in and each user sees only their own
    jobs and files (the artifact store is never served as it is: `webapp.serving`). Listening beyond
    this machine without accounts is refused unless FEWSHOT_ALLOW_ANONYMOUS=1.
    """
    settings = get_settings()
    users = load_users()
    host = overrides.get("server_name") or os.environ.get("FEWSHOT_HOST", "127.0.0.1")
    refuse_open_listening(host, users)
    # Gradio's upload folder (uploads, previews, copies handed out) is the app's own, so retention can sweep it.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.artifact_dir.parent / "gradio-uploads"))
    if settings.embedded:
        from tasks import embedded

        embedded.ensure_started()
    serving.forget_all()
    uploads = serving.UploadQuota(serving.restore_owners())
    retention.start_purger(on_purged=serving.forget_jobs, also=serving.sweep)
    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    options = {
        "server_name": host,
        "auth": check_password(users) if users else None,
        "auth_message": "fewshot-studio: sign in with the account you were given." if users else None,
        "server_port": int(os.environ.get("FEWSHOT_PORT", 7860)),
        "app_kwargs": {"middleware": [Middleware(serving.GuardMiddleware, uploads=uploads)]},
        "max_file_size": f"{serving.max_upload_mb()}mb",
        "show_error": True,
        "enable_monitoring": False,  # Gradio's /monitoring shows every user's traffic to any signed-in user
        "run_history": False,  # the Jobs tab is the history (Gradio's would record runs in the browser, and
                               # offers to copy them to a Hugging Face bucket)
        "css": anomaly_tab.CSS,
        # the review's keyboard shortcuts; file lists' sizes in whole bytes; a check of a picture chosen in a canvas
        "head": f"<script>{completion_tab.SHORTCUTS_JS}</script><script>{file_sizes.WHOLE_BYTES_JS}</script>"
                f"<script>{insertion_tab.CHOSEN_PICTURE_JS}</script>",
        "prevent_thread_lock": prevent_thread_lock,
        "max_threads": views.MAX_THREADS,  # follows wait in threads: views.Followers
        # Gradio's start-up check that the page answers gives up after one request slower than 3 s, and then exits
        # asking for a share link: a loaded machine (embedded workers importing torch beside it) failed to start
        "_frontend": False,
    }
    options.update(overrides)
    demo.launch(**options)
    return demo
