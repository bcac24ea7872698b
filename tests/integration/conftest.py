"""Real services for the integration tests: a fresh PostgreSQL database and RabbitMQ vhost per test,
and `celery worker` subprocesses on them. Under CI=true a missing service fails the test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipeline.adapters.mail.sink import MailSink

ROOT = Path(__file__).resolve().parents[2]
PG = os.environ.get("VIALFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AMQP_HOST = os.environ.get("VIALFLOW_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
CI = os.environ.get("CI") == "true"


def unavailable(service: str, error: Exception):
    message = f"{service} is not reachable ({error})"
    if CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def database_url():
    name = f"vialflow_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure means no PostgreSQL
        unavailable("PostgreSQL", error)
    yield PG.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


RABBITMQCTL = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/usr/lib/rabbitmq/bin")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run([RABBITMQCTL, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def broker_url():
    vhost = f"vialflow-test-{uuid.uuid4().hex[:12]}"
    try:
        if RABBITMQCTL is None:
            raise RuntimeError("rabbitmqctl not found")
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except Exception as error:  # noqa: BLE001
        unavailable("RabbitMQ", error)
    yield f"{AMQP_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


class Workers:
    """`celery -A workers worker` subprocesses sharing one database, broker and SMTP server."""

    def __init__(self, database_url: str, broker_url: str, smtp_url: str, log_dir: Path):
        self.env = {**os.environ, "VIALFLOW_DATABASE_URL": database_url, "VIALFLOW_BROKER_URL": broker_url,
                    "VIALFLOW_SMTP_URL": smtp_url, "VIALFLOW_SMTP_RETRY_DELAYS": "0,0,0,0,0"}
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, queues: str = "vialflow.pipeline,vialflow.email", concurrency: int = 1) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues, "--pool", "prefork",
             "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--hostname", f"w{len(self.processes)}-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no acks."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def mail_sink(tmp_path):
    """A real SMTP server (aiosmtpd) on loopback; `mail_sink.script` decides per message."""
    with MailSink(tmp_path / "received") as sink:
        yield sink


@pytest.fixture
def workers(database_url, broker_url, mail_sink, tmp_path):
    pool = Workers(database_url, broker_url, mail_sink.url, tmp_path)
    yield pool
    pool.stop()


def wait_for(predicate, timeout: float = 120, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
