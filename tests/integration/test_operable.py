"""The deployed pipeline, operable (issue 11): stopped runs resume, lost messages and claims are handed out
again, every failure is one line, and each run's files are exported; through the real PostgreSQL,
RabbitMQ, `celery worker` and `celery beat` processes and an SMTP server, counting what it received."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from pipeline.adapters.db import make_engine
from pipeline.adapters.db.tables import Base

from .conftest import ROOT, _rabbitmqctl, wait_for
from .test_emails import recipient_of
from .test_pipeline import EXAMPLE, copy_scenario

T = Base.metadata.tables
pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "pipeline.entrypoints.cli"]


def outbox(database_url: str) -> dict[str, str]:
    with make_engine(database_url).connect() as c:
        return dict(c.execute(select(T["outbox"].c.recipient_id, T["outbox"].c.state)).all())


def assert_each_recipient_has_one_email_or_is_recorded(database_url: str, sink) -> dict[str, str]:
    """Counted from what the SMTP server received: sent means exactly one message, unknown at most
    one, failed none; nobody ever gets two."""
    received = collections.Counter(recipient_of(message.content) for message in sink.received)
    states = outbox(database_url)
    assert max(received.values(), default=0) <= 1, "a recipient got two emails"
    for recipient, state in states.items():
        assert state in ("sent", "unknown", "failed"), (recipient, state)
        if state == "sent":
            assert received[recipient] == 1, recipient
        if state == "failed":
            assert received[recipient] == 0, recipient
    assert set(received) <= set(states)
    return states


def one_line_failure(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "SecurityWarning" not in line]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_stopped_mid_send_resumes_when_run_again_and_nobody_gets_two_emails(
        stop, database_url, mail_sink, tmp_path):
    mail_sink.script = lambda content: time.sleep(0.03)  # slow enough to be stopped half way
    out = tmp_path / "out"
    command = [*CLI, "run", str(EXAMPLE), "--out", str(out), "--database-url", database_url,
               "--smtp-url", mail_sink.url]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: mail_sink.accepted >= 20, timeout=180, what="the first emails")
    first.send_signal(stop)
    first.communicate(timeout=60)
    sent_before = mail_sink.accepted
    assert sent_before < len(outbox(database_url)), "the run finished before it was stopped"

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    states = assert_each_recipient_has_one_email_or_is_recorded(database_url, mail_sink)
    assert collections.Counter(states.values())["sent"] >= len(states) - 2 * 32  # at most two batches unknown
    assert (out / "summary.json").exists()


def test_two_commands_on_one_session_at_once_one_runs_and_the_other_says_so(database_url, mail_sink, tmp_path):
    mail_sink.script = lambda content: time.sleep(0.02)
    command = [*CLI, "run", str(EXAMPLE), "--database-url", database_url, "--smtp-url", mail_sink.url]
    first = subprocess.Popen([*command, "--out", str(tmp_path / "a")], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_for(lambda: mail_sink.accepted >= 1, timeout=180, what="the first run to send")
    second = subprocess.run([*command, "--out", str(tmp_path / "b")], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert "est en cours de traitement par une autre commande vialflow" in one_line_failure(second)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert_each_recipient_has_one_email_or_is_recorded(database_url, mail_sink)


def test_emails_whose_message_was_lost_and_stale_claims_are_finished_by_beat(
        workers, database_url, broker_url, mail_sink, tmp_path):
    """The pipeline runs with no email worker; the email queue is then purged (its messages lost), a
    few rows are left claimed or going out by a sender that died. An email worker and beat start:
    beat hands everything out again once the leases run out, and records the rows that were going
    out as unknown."""
    workers.env.update(VIALFLOW_LEASE_SECONDS="2", VIALFLOW_BEAT_SECONDS="1",
                       VIALFLOW_EXPORT_DIR=str(tmp_path / "exports"))
    workers.start(queues="vialflow.pipeline")
    scenario = copy_scenario(EXAMPLE, tmp_path / "scenario", closes_at="2021-06-01T00:00:00",
                             opens_at="2021-05-31T00:00:00", confirmation_at="2021-06-01T00:00:00")
    loaded = subprocess.run([*CLI, "load", str(scenario), "--database-url", database_url], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers", "beat", "--schedule",
                             str(tmp_path / "beat-schedule"), "--loglevel", "WARNING"], cwd=ROOT, env=workers.env,
                            stdout=open(tmp_path / "beat.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        engine = make_engine(database_url)
        runs = T["runs"]
        def stamp(column):
            with engine.connect() as c:
                return c.execute(select(column)).scalar()

        wait_for(lambda: stamp(runs.c.sending_at), timeout=180,
                 what="the emails to be handed over")
        time.sleep(1)
        vhost = broker_url.rsplit("/", 1)[1]
        _rabbitmqctl("purge_queue", "-p", vhost, "vialflow.email")
        box = T["outbox"]
        with engine.begin() as c:
            ids = c.execute(select(box.c.id).order_by(box.c.id).limit(6)).scalars().all()
            c.execute(update(box).where(box.c.id.in_(ids[:3])).values(state="claimed", claimed_by="dead"))
            c.execute(update(box).where(box.c.id.in_(ids[3:])).values(state="sending", claimed_by="dead"))
        assert mail_sink.accepted == 0
        workers.start(queues="vialflow.email")
        wait_for(lambda: stamp(runs.c.settled_at), timeout=180,
                 what="beat to finish the emails")
        states = assert_each_recipient_has_one_email_or_is_recorded(database_url, mail_sink)
        with engine.connect() as c:
            lost = dict(c.execute(select(box.c.id, box.c.state).where(box.c.id.in_(ids))).all())
        assert [lost[i] for i in ids] == ["sent"] * 3 + ["unknown"] * 3
        assert collections.Counter(states.values()) == {"sent": len(states) - 3, "unknown": 3}
        # The export step wrote the run whole, and its summary again once the emails settled.
        with engine.connect() as c:
            session_id = c.execute(select(T["sessions"].c.id)).scalar()
        session_folder = tmp_path / "exports" / session_id
        wait_for(lambda: b'"unknown": 3' in (session_folder / "latest" / "summary.json").read_bytes()
                 if (session_folder / "latest").exists() else False, timeout=60, what="the settled summary")
        exported = sorted(p.name for p in (session_folder / "runs" / "1").iterdir())
        assert exported == ["allocations.csv", "deliveries.csv", "manifests", "rejections.csv", "report.html",
                            "summary.json"]
        assert os.readlink(session_folder / "latest") == "runs/1"
        by_hand = subprocess.run([*CLI, "export", session_id, "--out", str(tmp_path / "again"),
                                  "--database-url", database_url], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120)
        assert by_hand.returncode == 0, by_hand.stderr
        # The manifests' index holds each dispatch file's SHA-256: the same index, the same files.
        for name in ("allocations.csv", "deliveries.csv", "summary.json", "manifests/index.json"):
            assert (tmp_path / "again" / session_id / "runs" / "1" / name).read_bytes() == \
                (session_folder / "runs" / "1" / name).read_bytes()
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)


def test_operator_lists_and_deliberately_resends_failed_emails_recorded_with_who_and_why(
        database_url, mail_sink, tmp_path):
    refused = {"n": 0}

    def refuse_three(content: bytes):
        if refused["n"] < 3:
            refused["n"] += 1
            return "550 5.1.1 mailbox unavailable"
        return None

    mail_sink.script = refuse_three
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", str(EXAMPLE), "--out", str(out), "--database-url", database_url,
                           "--smtp-url", mail_sink.url], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with make_engine(database_url).connect() as c:
        session_id = c.execute(select(T["sessions"].c.id)).scalar()
    listed = subprocess.run([*CLI, "emails", session_id, "--state", "failed", "--json", "--database-url",
                             database_url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 3 and "@" not in listed.stdout
    no_reason = subprocess.run([*CLI, "emails", session_id, "--resend", "--operator", "Alice", "--database-url",
                                database_url, "--smtp-url", mail_sink.url, "--out", str(out)], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert "(--reason)" in one_line_failure(no_reason)
    before = mail_sink.accepted
    again = subprocess.run([*CLI, "emails", session_id, "--resend", "--operator", "Alice", "--reason",
                            "addresses corrected", "--database-url", database_url, "--smtp-url", mail_sink.url,
                            "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "envoyé : 3" in again.stdout, again.stderr
    assert mail_sink.accepted == before + 3
    with make_engine(database_url).connect() as c:
        actions = c.execute(select(T["actions"].c.actor, T["actions"].c.action, T["actions"].c.reason)).all()
    assert ("Alice", "resend", "addresses corrected") in actions


def test_each_operational_mistake_is_one_line_and_writes_nothing(database_url, broker_url, tmp_path):
    out = tmp_path / "out"
    unreachable_broker = subprocess.run([*CLI, "run", str(EXAMPLE), "--out", str(out), "--database-url",
                                         database_url, "--broker-url", "amqp://guest:guest@127.0.0.1:1//"],
                                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "cannot reach the broker" in one_line_failure(unreachable_broker)
    started = time.monotonic()
    no_worker = subprocess.run([*CLI, "run", str(EXAMPLE), "--out", str(out), "--database-url", database_url,
                                "--broker-url", broker_url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "no worker answers" in one_line_failure(no_worker)
    assert time.monotonic() - started < 30
    unreachable_database = subprocess.run([*CLI, "run", str(EXAMPLE), "--out", str(out), "--database-url",
                                           "postgresql+psycopg://postgres@127.0.0.1:1/test"], cwd=ROOT,
                                          capture_output=True, text=True, timeout=120)
    assert "database cannot be reached" in one_line_failure(unreachable_database)
    assert not out.exists()
    env = {k: v for k, v in os.environ.items() if k != "VIALFLOW_SMTP_URL"}
    no_smtp = subprocess.run([sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "vialflow.email",
                              "--without-gossip", "--without-mingle"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**env, "VIALFLOW_DATABASE_URL": database_url,
                                               "VIALFLOW_BROKER_URL": broker_url})
    assert no_smtp.returncode != 0 and "Traceback" not in no_smtp.stderr
    assert "no SMTP server" in no_smtp.stderr
    with make_engine(database_url).connect() as c:
        assert "sessions" not in c.dialect.get_table_names(c) or not c.execute(select(T["sessions"])).all()
