"""webapp.request_errors: what a failed request tells its user."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import gradio.queueing
import pytest
from gradio.exceptions import ComponentProcessingError
from gradio.server_messages import LogMessage, ProcessCompletedMessage, ProgressMessage

from engine.errors import UserInputError
from webapp.request_errors import UNEXPECTED, error_message, explain_errors


def test_user_errors_keep_their_message_and_anything_else_says_nothing_internal() -> None:
    assert error_message(UserInputError("plate.png: not an image")) == "plate.png: not an image"
    disk = OSError(28, "No space left on device", "/srv/artifacts/jobs/4f2a/inputs/plate.png")
    assert error_message(disk) == UNEXPECTED and error_message(AttributeError("'dict' has no 'strip'")) == UNEXPECTED
    assert error_message(None) is None


def test_an_input_gradio_could_not_convert_is_named_without_its_payload() -> None:
    error = ComponentProcessingError(
        "Could not preprocess input component at index 5 (a `slider` component) of the event handler (named "
        "\"run\") with input components: [files, slider].\n\nExpected a `float`, but the value passed to the event "
        "handler was: '/srv/x' (of type `str`).\n\nOriginal error: TypeError: '<' not supported")
    message = error_message(error)
    assert message.startswith("The input at index 5 (a `slider`) was not accepted, expected a `float`, got a `str`")
    assert "/srv" not in message and "Original" not in message


QUOTING = "Model name 'a<b & c>d' is not accepted"


def sent(client: str, message):
    """What the queue sends for `message` to a request from `client` (its x-gradio-user header)."""
    explain_errors()
    queue, event = object.__new__(gradio.queueing.Queue), SimpleNamespace(
        alive=True, _id="e1", session_hash="s1", request=SimpleNamespace(headers={"x-gradio-user": client}))
    pending: asyncio.Queue = asyncio.Queue()
    queue.pending_messages_per_session = {"s1": pending}
    gradio.queueing.Queue.send_message(queue, event, message)
    return pending.get_nowait()


@pytest.mark.parametrize("client", ["api", "mcp", ""])
def test_api_clients_get_messages_as_written(client: str) -> None:
    failed = ProcessCompletedMessage(output={"error": QUOTING}, success=False, title="Error")
    assert sent(client, failed).output["error"] == QUOTING
    assert sent(client, LogMessage(log=QUOTING, level="warning", title="Warning")).log == QUOTING


def test_the_page_gets_messages_escaped_for_its_html_toast() -> None:
    """The toast renders a message as sanitised HTML: "a<b" showed as "a", the rest of the message cut off."""
    escaped = "Model name 'a&lt;b &amp; c&gt;d' is not accepted"
    assert sent("app", ProcessCompletedMessage(output={"error": QUOTING}, success=False, title="Error")).output == {
        "error": escaped}
    assert sent("app", LogMessage(log=QUOTING, level="info", title="Info")).log == escaped
    result = ProcessCompletedMessage(output={"data": ["a<b"]}, success=True)
    progress = ProgressMessage(progress_data=[])
    assert sent("app", result) == result and sent("app", progress) == progress  # results: not messages
