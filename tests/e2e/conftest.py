"""The real app, launched in this process on a free port (embedded worker)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

# `expect` waits 5 s by default: on CI's two loaded cores an upload of two pictures took longer (seen in CI), so the
# browser tests' assertions wait as long as a person would before calling the page broken.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    from webapp.app import launch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = launch(prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
