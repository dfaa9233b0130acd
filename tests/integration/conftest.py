"""Real services for the distributed tests: redis-server, `celery -A tasks worker` and `python -m webapp`
processes on loopback, sharing this test run's artifact store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tasks import client
from tasks.client import Status
from tests.conftest import REPO, require
from tests.helpers import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(port: int, password: str | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall((f"AUTH {password}\r\nPING\r\n" if password else "PING\r\n").encode())
            reply = b""
            while not reply.endswith(b"+PONG\r\n") and len(reply) < 64:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return reply.endswith(b"+PONG\r\n")
    except OSError:
        return False


class RedisServer:
    """A redis-server on a free loopback port; `durable` keeps its data across a restart (append-only
    file), as a production Redis should so that queued jobs survive it; `password` requires AUTH."""

    def __init__(self, workdir: Path, durable: bool = False, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        require(binary is not None, "redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.password = password
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "yes" if durable else "no", "--dir", str(workdir)]
        if password:
            self.command += ["--requirepass", password]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: redis_answers(self.port, self.password), timeout=20, what="redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis writes its append-only file and exits
            self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def env_for(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "FEWSHOT_REDIS_URL": redis_url, "PYTHONPATH": str(REPO), **extra}


def start_worker(env: dict[str, str], log: Path, hostname: str, queue: str = "quick,long",
                 extra_args: Sequence[str] = ()) -> subprocess.Popen:
    """A Celery worker process (its own process group, so a test can kill parent and child together)."""
    handle = open(log, "w")  # noqa: SIM115 - kept open for the worker's life
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", queue, "--concurrency", "1",
         "--loglevel", "INFO", "--hostname", f"{hostname}@%h", *extra_args],
        cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: "ready." in log.read_text() or process.poll() is not None, timeout=90, what="worker ready")
    assert process.poll() is None, log.read_text()
    return process


def kill_pool_processes(worker_pid: int) -> list[int]:
    """SIGKILL the prefork pool processes of a Celery worker (where its jobs run), as the OOM killer would."""
    children = [int(pid) for pid in
                subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True).stdout.split()]
    assert children, f"the worker {worker_pid} has no pool process"
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    return children


def start_web_app(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`python -m webapp` in its own process, as deployed; returns it and its address."""
    port = free_port()
    handle = open(log, "w")  # noqa: SIM115 - kept open for the app's life
    process = subprocess.Popen([sys.executable, "-m", "webapp"], cwd=REPO, env={**env, "FEWSHOT_PORT": str(port)},
                               stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"

    def serving() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:  # answering, e.g. with a sign-in redirect
            return True
        except OSError:
            return process.poll() is not None

    wait_until(serving, timeout=90, what="the web app to serve")
    assert process.poll() is None, log.read_text()
    return process, url


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(redis_url, tmp_path_factory) -> Iterator[Path]:
    """One worker on both lanes' default queues; yields its log."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_worker(env_for(redis_url), log, "test-worker")
    try:
        yield log
    finally:
        stop_processes([process])


def a_quick_job_passes_a_long_training(training_id: str, submit_quick: Callable[[], str]) -> None:
    """While a long training runs, a quick job is submitted and finishes; then the training is cancelled."""
    wait_until(lambda: len(client.get(training_id).live.get("history", [])) > 3, 120, "training steps")
    quick = client.get(submit_quick())
    assert quick.lane == "quick" and client.get(training_id).lane == "long"
    quick = client.wait(quick.id, timeout=120)
    assert quick.status is Status.SUCCEEDED, quick.error
    assert client.get(training_id).status is Status.RUNNING  # still training: the quick job did not wait
    client.cancel(training_id)
    assert client.wait(training_id, timeout=60).status.final
