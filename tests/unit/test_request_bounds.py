"""webapp.serving._bounded: a body without a Content-Length ends the request once past the bound."""

from __future__ import annotations

import asyncio

from webapp.serving import _bounded


def test_a_body_without_a_length_ends_the_request_once_past_the_bound():
    chunks = [{"type": "http.request", "body": b"x" * 10, "more_body": True} for _ in range(5)]

    async def receive() -> dict:
        return chunks.pop(0)

    async def read() -> list[str]:
        bounded = _bounded(receive, 25)
        return [(await bounded())["type"] for _ in range(4)]

    assert asyncio.run(read()) == ["http.request", "http.request", "http.disconnect", "http.disconnect"]
