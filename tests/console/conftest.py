"""The console over a copy of the fixture's run folder, with accounts of each role."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipeline.adapters.db import make_engine, migrate
from pipeline.entrypoints.console.app import create_app
from pipeline.services.accounts import add_user
from pipeline.settings import DATABASE_FILE

PASSWORDS = {"sophie": "support-password-1", "olivier": "operator-password-1", "adele": "admin-password-12"}
ROLES = {"sophie": "support", "olivier": "operator", "adele": "admin"}


class RecordingWorkers:
    """Stands for the workers: what the console handed over (the browser test uses real ones)."""

    def __init__(self) -> None:
        self.handed, self.sent_again, self.mailed = [], [], []

    def send_mail(self, sender: str, to: str, content: bytes) -> bool:
        self.mailed.append((sender, to, content))
        return True

    def hand_over(self, run: int) -> None:
        self.handed.append(run)

    def send_again(self, run: int) -> None:
        self.sent_again.append(run)

    @contextlib.contextmanager
    def running(self):
        yield


@pytest.fixture
def folder(fixture_run, tmp_path) -> Path:
    """A copy of the fixture's run folder with one account per role."""
    copy = tmp_path / "run"
    shutil.copytree(fixture_run, copy)
    engine = make_engine(f"sqlite:///{copy / DATABASE_FILE}")
    migrate(engine)
    for name, role in ROLES.items():
        add_user(engine, name, role, PASSWORDS[name], dt.datetime.now(dt.timezone.utc))
    engine.dispose()
    return copy


@pytest.fixture
def engine(folder):
    found = make_engine(f"sqlite:///{folder / DATABASE_FILE}")
    yield found
    found.dispose()


@pytest.fixture
def workers() -> RecordingWorkers:
    return RecordingWorkers()


@pytest.fixture
def client(engine, workers, folder):
    with TestClient(create_app(engine, workers, folder), follow_redirects=False) as found:
        yield found


def sign_in(client: TestClient, name: str) -> TestClient:
    client.cookies.clear()
    answer = client.post("/login", data={"username": name, "password": PASSWORDS[name]})
    assert answer.status_code == 303, answer.text
    return client


@contextlib.contextmanager
def serving(folder: Path | None, log: Path, *options: str, env: dict | None = None):
    """`vialflow console --out folder` (or, without a folder, on the `--database-url` of `options`) as
    an operator starts it (uvicorn, its in-process worker and loopback SMTP server) on a free loopback
    port, with these VIALFLOW_* variables (`env`) and no other; yields its base URL and its process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}, **(env or {})}
    with log.open("w") as written:
        where = ["--out", str(folder)] if folder is not None else []
        child = subprocess.Popen([sys.executable, "-m", "pipeline.entrypoints.cli", "console", *where,
                                  "--port", str(port), *options], stdout=written, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if child.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(log.read_text())
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", child
        finally:
            child.terminate()
            child.wait(timeout=60)
