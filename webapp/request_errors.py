"""What a failed request tells its user: the message of an error raised for them (gr.Error, UserInputError), a
concise one for an input Gradio could not convert, and for anything unexpected a plain sentence, never the
exception's own text.

Gradio (`show_error=True`, which the pages need to show gr.Error messages as they come) sends any exception's text
to the client: an unexpected one can name a server path ("[Errno 28] No space left on device: '/srv/...'") or
internals, and an input it could not convert is answered with the whole payload and the converter's own error.
`explain_errors` makes Gradio's one error formatter (imported by name in two modules) answer as above; Gradio
still logs the exception with its traceback.

The page shows these messages (and gr.Warning / gr.Info) in a toast as sanitised HTML (`{@html sanitize(...)}`, no
option to show text), so a message quoting user text with "<" (an object named "a<b", a file "x<y.png") was cut off
where a tag seemed to start. The messages sent to the page, and only there (its requests say `x-gradio-user: app`;
gradio_client and the JS client's API calls say "api"), are HTML-escaped: the toast shows the text as written and
API clients still get it unescaped.
"""

from __future__ import annotations

import html
import re
from typing import Any

import gradio.queueing
import gradio.utils
from gradio.exceptions import AppError, ComponentProcessingError
from gradio.server_messages import EventMessage, LogMessage, ProcessCompletedMessage

from engine.errors import UserInputError

UNEXPECTED = ("Something went wrong on the server while answering this request; it is logged, and nothing you had "
              "stored was changed. Try again, and tell the operator the time if it happens again.")
_INPUT = re.compile(r"^Could not (?P<stage>preprocess|postprocess) (?P<kind>\w+) component at index (?P<index>\d+) "
                    r"\(a `(?P<block>[^`]+)` component\)")
_EXPECTED = re.compile(r"Expected a `(?P<type>[^`]+)`")
_GIVEN = re.compile(r"\(of type `(?P<type>[^`]+)`\)\.")


def error_message(error: BaseException | None) -> str | None:
    """The text a user gets for `error` (None: no error)."""
    if error is None:
        return None
    if isinstance(error, UserInputError):  # written for the user, wherever it was raised
        return str(error)
    if isinstance(error, ComponentProcessingError):
        text = str(error)
        where, expected, given = _INPUT.search(text), _EXPECTED.search(text), _GIVEN.search(text)
        if where and where["stage"] == "preprocess":
            wanted = f", expected a `{expected['type']}`" if expected else ""
            got = f", got a `{given['type']}`" if given else ""
            return (f"The {where['kind']} at index {where['index']} (a `{where['block']}`) was not accepted{wanted}"
                    f"{got}: see the endpoint's parameters at /gradio_api/info or the page's field.")
    return UNEXPECTED  # Gradio logs the exception with its traceback


def _payload(error: BaseException | None, show_error: bool) -> dict[str, Any]:
    if error is None or isinstance(error, AppError):
        return _gradio_payload(error, show_error)
    return {"error": error_message(error), "visible": True}


_gradio_payload = gradio.utils.error_payload


def for_the_page(message: EventMessage) -> EventMessage:
    """`message` as the page's toast must get it: the text of an error, warning or info HTML-escaped (the toast
    renders HTML, so that it shows the text as written); anything else as it is."""
    if isinstance(message, ProcessCompletedMessage) and not message.success and isinstance(
            message.output.get("error"), str):
        return message.model_copy(update={"output": {**message.output,
                                                     "error": html.escape(message.output["error"], quote=False)}})
    if isinstance(message, LogMessage):
        return message.model_copy(update={"log": html.escape(message.log, quote=False)})
    return message


def _from_the_page(event: gradio.queueing.Event) -> bool:
    request = getattr(event, "request", None)
    return request is not None and request.headers.get("x-gradio-user") == "app"


_gradio_send_message = gradio.queueing.Queue.send_message


def _send_message(queue: gradio.queueing.Queue, event: gradio.queueing.Event, message: EventMessage) -> None:
    _gradio_send_message(queue, event, for_the_page(message) if _from_the_page(event) else message)


def explain_errors() -> None:
    """Make this process's Gradio answer failed requests with `error_message` (once), and send the page its messages
    escaped for its HTML toast."""
    for module in (gradio.utils, gradio.queueing):
        module.error_payload = _payload  # type: ignore[attr-defined]
    gradio.queueing.Queue.send_message = _send_message  # type: ignore[method-assign]
