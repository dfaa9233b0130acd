"""Embedded mode's file queue: a worker polling while a message is being written never takes it half-written."""

from __future__ import annotations

from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from tasks import file_broker
from tasks.celery_app import create_app
from tasks.config import get_settings


def test_a_worker_polling_while_a_message_is_written_finds_it_whole_or_not_at_all(tmp_path: Path, monkeypatch):
    folders = {name: tmp_path / name for name in ("queue", "processed")}
    for folder in folders.values():
        folder.mkdir()
    options = {"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
               "processed_folder": str(folders["processed"]), "store_processed": True}
    with Connection("filesystem://", transport=file_broker.Transport, transport_options=options) as connection:
        channel = connection.channel()
        seen_mid_write = []

        def serialise_while_a_worker_polls(payload: object) -> str:
            try:  # what kombu's own transport lost: it had created the message file and not yet written it
                seen_mid_write.append(channel._get("long"))
            except Empty:
                seen_mid_write.append(None)
            return real_dumps(payload)

        real_dumps = file_broker.dumps
        monkeypatch.setattr(file_broker, "dumps", serialise_while_a_worker_polls)
        channel._put("long", {"job": "a"})
        monkeypatch.undo()

        assert seen_mid_write == [None]
        assert channel._get("long") == {"job": "a"}
        with pytest.raises(Empty):
            channel._get("long")
        assert list(folders["queue"].iterdir()) == []  # nothing partial left behind


def test_embedded_mode_sends_and_takes_messages_with_this_transport():
    settings = get_settings()
    assert settings.embedded
    with create_app(settings).connection_for_write() as connection:
        assert type(connection.transport) is file_broker.Transport
