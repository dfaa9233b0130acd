"""The Blocks app: one tab per tool and a Jobs tab; `launch()` serves it."""

from __future__ import annotations

import os

import gradio as gr

from tasks.config import get_settings
from webapp import anomaly_tab, completion_tab, insertion_tab, jobs_tab

NOT_BUILT = {
    "Few-shot fine-tuning": "Adapt a classifier or detector from a handful of labelled examples.",
}


def build_app() -> gr.Blocks:
    settings = get_settings()
    mode = ("jobs run inside this app (embedded worker)" if settings.embedded
            else f"jobs go through {settings.broker_display} to Celery workers")
    with gr.Blocks(title="fewshot-studio") as demo:
        gr.Markdown(f"# fewshot-studio\nFew-shot computer vision on your own images · {mode}.")
        with gr.Tabs():
            with gr.Tab("Anomaly segmentation", id="anomaly"):
                anomaly_tab.build()
            with gr.Tab("Annotation completion", id="completion"):
                completion_tab.build()
            with gr.Tab("Object insertion", id="insertion"):
                insertion_tab.build()
            for title, purpose in NOT_BUILT.items():
                with gr.Tab(title):
                    gr.Markdown(f"### {title}\n{purpose}\n\n**Not built yet.** This tool is planned; "
                                "nothing here runs a model today.")
            with gr.Tab("Jobs", id="jobs"):
                jobs_tab.build()
    return demo


def launch(prevent_thread_lock: bool = False, **overrides) -> gr.Blocks:
    """Serve the app; in embedded mode, start the in-process worker first."""
    settings = get_settings()
    if settings.embedded:
        from tasks import embedded

        embedded.ensure_started()
    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    options = {
        "server_name": os.environ.get("FEWSHOT_HOST", "127.0.0.1"),
        "server_port": int(os.environ.get("FEWSHOT_PORT", 7860)),
        "allowed_paths": [str(settings.artifact_dir)],
        "max_file_size": f"{int(os.environ.get('FEWSHOT_MAX_UPLOAD_MB', 200))}mb",
        "show_error": True,
        "prevent_thread_lock": prevent_thread_lock,
    }
    options.update(overrides)
    demo.launch(**options)
    return demo
