"""webapp.serving's request bodies: a body without a Content-Length ends the request once past the bound (413), and
a browser that leaves before sending the whole body (a page reloaded mid-upload) ends it quietly."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.requests import ClientDisconnect, Request

from webapp.serving import REQUEST_REFUSAL, GuardMiddleware, RequestBody


def test_a_body_without_a_length_ends_the_request_once_past_the_bound():
    chunks = [{"type": "http.request", "body": b"x" * 10, "more_body": True} for _ in range(5)]

    async def receive() -> dict:
        return chunks.pop(0)

    async def read() -> list[str]:
        bounded = RequestBody(receive)
        bounded.bound(25)
        return [(await bounded())["type"] for _ in range(4)]

    assert asyncio.run(read()) == ["http.request", "http.request", "http.disconnect", "http.disconnect"]


def guarded(path: str, messages: list[dict], app_error: Exception | None = None) -> tuple[list[dict], list[bytes]]:
    """(what the guard sent, the bodies the app behind it read) for a POST to `path` whose body arrives as
    `messages`; the app reads the whole body as Gradio's routes do, then answers, or raises `app_error`."""
    sent: list[dict] = []
    bodies: list[bytes] = []

    async def gradio(scope, receive, send) -> None:
        bodies.append(await Request(scope, receive).body())
        if app_error is not None:
            raise app_error
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    path, _, query = path.partition("?")
    scope = {"type": "http", "method": "POST", "path": path, "query_string": query.encode(), "headers": []}
    asyncio.run(GuardMiddleware(gradio)(scope, receive, send))
    return sent, bodies


@pytest.mark.parametrize("path", ["/gradio_api/upload?upload_id=u1", "/gradio_api/reset", "/gradio_api/queue/join",
                                  "/login"])
def test_a_browser_that_leaves_mid_body_ends_its_request_quietly(path, caplog):
    """A page reloaded during an upload left a ClientDisconnect traceback in the log each time; a run's or a sign-in's
    partial body was handed on as if whole."""
    caplog.set_level(logging.DEBUG, logger="webapp.serving")
    part = {"type": "http.request", "body": b'{"data": [', "more_body": True}
    sent, bodies = guarded(path, [part, {"type": "http.disconnect"}])
    assert sent == [] and bodies == []  # nothing answered; no part of a body taken for a whole one
    (line,) = caplog.records
    assert line.levelno == logging.DEBUG and "the browser left" in line.getMessage() and not line.exc_info


def test_a_body_past_the_bound_without_a_length_is_refused_as_too_large():
    chunks = [{"type": "http.request", "body": b"x" * 2**20, "more_body": True} for _ in range(17)]
    sent, _ = guarded("/gradio_api/reset", chunks)
    assert sent[0]["status"] == 413 and sent[1]["body"].decode() == REQUEST_REFUSAL


def test_errors_other_than_a_browser_leaving_still_reach_the_log():
    whole = [{"type": "http.request", "body": b"{}", "more_body": False}]
    with pytest.raises(RuntimeError, match="disk full"):
        guarded("/gradio_api/reset", list(whole), RuntimeError("disk full"))
    with pytest.raises(ClientDisconnect):  # said by the app while the browser is still there: not an ordinary leave
        guarded("/gradio_api/reset", list(whole), ClientDisconnect())
