"""The Dockerfile and compose.yaml start what the README says they start."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO

# What whoever runs `docker compose up` sets, as the README's command does.
OPERATOR_ENV = {"REDIS_PASSWORD": "change-me", "FEWSHOT_AUTH": "alice:pw-alice"}


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile (one `ENV` with `KEY=VALUE` pairs continued over lines)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def compose_env(service: str) -> dict[str, str]:
    """A compose service's environment, `${VAR:?message}` filled from OPERATOR_ENV (missing: left empty)."""
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    required = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")
    return {key: required.sub(lambda m: OPERATOR_ENV.get(m[1], ""), str(value))
            for key, value in (services[service].get("environment") or {}).items()}


def test_the_compose_web_service_is_allowed_to_listen_in_its_container(monkeypatch):
    """The image listens on 0.0.0.0 (else the published port reaches nothing), which the app allows only with
    accounts: compose's web service must pass them on, or it exits at start and restarts for ever."""
    from webapp.app import load_users, refuse_open_listening

    env = image_env() | compose_env("web")
    for key in ("FEWSHOT_AUTH", "FEWSHOT_AUTH_FILE", "FEWSHOT_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert env["FEWSHOT_HOST"] == "0.0.0.0" and env["FEWSHOT_REDIS_URL"] == "redis://:change-me@redis:6379/0"
    refuse_open_listening(env["FEWSHOT_HOST"], load_users())  # no SystemExit
    assert load_users() == {"alice": "pw-alice"}


def test_the_app_alone_refuses_to_listen_on_every_address_without_accounts(monkeypatch):
    from webapp.app import refuse_open_listening

    monkeypatch.delenv("FEWSHOT_ALLOW_ANONYMOUS", raising=False)
    with pytest.raises(SystemExit, match="set FEWSHOT_AUTH"):
        refuse_open_listening(image_env()["FEWSHOT_HOST"], {})
