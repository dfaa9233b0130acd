"""Embedded mode's broker: kombu's file transport, each message written whole before a worker can take it.

kombu creates a message file and then writes it; a worker polling the folder can move and read it in between, so
it reads an empty message, stops on a JSONDecodeError, and the job's message is gone (kombu#1551; seen in this
project's CI: the worker restarted and its job was sent again, behind one submitted after it). Writing under a
name no reader takes, then renaming into place (atomic on one file system), makes every message appear whole.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

from engine.files import write_atomically


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"  # kombu's name: readers take in this order
        folder = Path(self.data_folder_out)
        try:  # staged under a hidden name: a reader takes only `<stamp>.<queue>.msg`
            write_atomically(folder / name, dumps(payload))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {folder}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
