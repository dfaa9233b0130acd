"""webapp.request_errors: what a failed request tells its user."""

from __future__ import annotations

from gradio.exceptions import ComponentProcessingError

from engine.errors import UserInputError
from webapp.request_errors import UNEXPECTED, error_message


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
