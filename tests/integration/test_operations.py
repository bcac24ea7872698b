"""Operations through the real services: worker processes at DEBUG log no address, name or RPPS
(SMTP refusals that echo the address included), with a DKIM key their emails verify, and each
worker answers `celery inspect ping`."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import dkim
import pytest

from ..test_dkim import SELECTOR, DOMAIN, dns, ed25519_key
from ..test_logs import assert_no_personal_data
from .conftest import ROOT
from .test_emails import recipient_of, run_deployed
from .test_pipeline import EXAMPLE

pytestmark = pytest.mark.integration


def test_workers_at_debug_log_each_step_and_no_personal_data_and_sign_their_emails(
        workers, mail_sink, database_url, broker_url, tmp_path):
    key, record = ed25519_key(tmp_path)
    workers.env.update(VIALFLOW_LOG_LEVEL="DEBUG", VIALFLOW_LOG_FORMAT="json", VIALFLOW_DKIM_KEY_FILE=str(key),
                       VIALFLOW_DKIM_SELECTOR=SELECTOR, VIALFLOW_DKIM_DOMAIN=DOMAIN)

    def refuse_some(content: bytes) -> str | None:
        recipient = recipient_of(content)
        address = re.search(rb"(?m)^To: .*<([^>]+)>", content.replace(b"\r\n ", b" ")).group(1).decode()
        return f"550 5.1.1 <{address}>: Recipient address rejected" if recipient.endswith("7") else None

    mail_sink.script = refuse_some
    workers.start(queues="vialflow.pipeline")
    workers.start(queues="vialflow.email")

    done = run_deployed(workers, database_url, broker_url, tmp_path / "out")
    assert done.returncode == 0, done.stderr + workers.logs()
    # Liveness as the docker-compose healthchecks ask it: each worker answers a ping over the broker.
    ping = subprocess.run([sys.executable, "-m", "celery", "-A", "workers", "inspect", "ping", "--timeout", "10"],
                          cwd=ROOT, env=workers.env, capture_output=True, text=True, timeout=120)
    assert ping.returncode == 0 and ping.stdout.count("pong") == 2, ping.stdout + ping.stderr
    logs = workers.logs()
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(r["level"] == "DEBUG" for r in records)
    assert any(r["logger"] == "vialflow" and "dkim" == r.get("event") and "signed" in r["message"] for r in records)
    for step in ("close", "allocate", "schedule", "prepare_confirmations", "send"):
        ends = [r for r in records if r.get("step") == step and r.get("event") == "end"]
        assert ends and all(r.get("task") and r.get("session") and "duration_s" in r for r in ends), step
    assert any("550 5.1.1 <address>" in r["message"] for r in records)
    assert_no_personal_data(logs + done.stdout + done.stderr, EXAMPLE)
    assert mail_sink.received
    for message in mail_sink.received:
        assert dkim.verify(message.content, dnsfunc=dns(record))
