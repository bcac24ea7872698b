"""Confirmation emails (R9) through real workers, RabbitMQ, PostgreSQL and an SMTP server on loopback."""

from __future__ import annotations

import collections
import datetime as dt
import re
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import select

from pipeline.adapters.mail.sink import DISCONNECT
from pipeline.entrypoints.runner import load_into
from pipeline.adapters.db import make_engine
from pipeline.adapters.db.tables import Base

from .conftest import ROOT, wait_for
from .test_pipeline import EXAMPLE

T = Base.metadata.tables
pytestmark = pytest.mark.integration
NAMED = ("medecin", "medecin_travail", "sage_femme")


def recipient_of(content: bytes) -> str:
    return re.search(rb"^X-Vialflow-Recipient: (\S+)", content, re.M).group(1).decode()


def run_deployed(workers, database_url, broker_url, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "run", str(EXAMPLE), "--out", str(out),
                           "--database-url", database_url, "--broker-url", broker_url],
                          cwd=ROOT, env=workers.env, capture_output=True, text=True, timeout=600)


def outbox(database_url: str) -> pd.DataFrame:
    with make_engine(database_url).connect() as c:
        rows = c.execute(select(T["outbox"].c.recipient_id, T["outbox"].c.state, T["outbox"].c.attempts)).all()
    return pd.DataFrame(rows, columns=["recipient_id", "state", "attempts"])


def test_r9_every_officine_that_ordered_and_every_named_professional_gets_exactly_one_email(
        workers, mail_sink, database_url, broker_url, tmp_path):
    workers.start(queues="vialflow.pipeline")
    workers.start(queues="vialflow.email")
    done = run_deployed(workers, database_url, broker_url, tmp_path / "out")
    assert done.returncode == 0, done.stderr + workers.logs()

    orders = pd.read_csv(EXAMPLE / "orders.csv", dtype=str, keep_default_na=False)
    rejected = set(pd.read_csv(EXAMPLE / "expected" / "rejections.csv", dtype=str)["line"].astype(int))
    orders = orders[~(orders.index + 2).isin(rejected)]
    pharmacies = set(pd.read_csv(EXAMPLE / "pharmacies.csv", dtype=str)["finess"])
    professionals = set(pd.read_csv(EXAMPLE / "professionals.csv", dtype=str)["rpps"])
    expected = (set(orders["finess"]) & pharmacies) | (set(orders.loc[orders["effector"].isin(NAMED), "rpps"]) & professionals)

    received = collections.Counter(recipient_of(m.content) for m in mail_sink.received)
    assert set(received) == expected
    assert set(received.values()) == {1}
    copies = sorted(p.name for p in (tmp_path / "out" / "mail").glob("*.eml"))
    assert len(copies) == len(expected)
    # The copies in DIR/mail/ are the messages as they were handed to the server.
    sent = {recipient_of(m.content): m.content for m in mail_sink.received}
    for path in (tmp_path / "out" / "mail").glob("*.eml"):
        assert path.read_bytes() == sent[recipient_of(path.read_bytes())]


def test_r9_a_temporary_error_three_times_then_success_gives_one_delivery(
        workers, mail_sink, database_url, broker_url, tmp_path):
    refusals = collections.Counter()

    def flaky(content: bytes) -> str | None:
        recipient = recipient_of(content)
        if recipient == "069020474" and refusals[recipient] < 3:
            refusals[recipient] += 1
            return "451 4.3.0 try again later"
        return None

    mail_sink.script = flaky
    workers.start()
    done = run_deployed(workers, database_url, broker_url, tmp_path / "out")
    assert done.returncode == 0, done.stderr + workers.logs()[-3000:]
    assert refusals["069020474"] == 3
    assert [recipient_of(m.content) for m in mail_sink.received].count("069020474") == 1
    row = outbox(database_url).set_index("recipient_id").loc["069020474"]
    assert (row["state"], row["attempts"]) == ("sent", 4)


def test_r9_a_permanent_error_is_failed_and_not_retried_and_a_cut_after_data_is_unknown(
        workers, mail_sink, database_url, broker_url, tmp_path):
    seen = collections.Counter()

    def script(content: bytes) -> str | None:
        recipient = recipient_of(content)
        seen[recipient] += 1
        return {"069020474": "550 5.1.1 mailbox unavailable", "010763615": DISCONNECT}.get(recipient)

    mail_sink.script = script
    workers.start()
    done = run_deployed(workers, database_url, broker_url, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = outbox(database_url).set_index("recipient_id")
    assert rows.loc["069020474", "state"] == "failed" and seen["069020474"] == 1
    assert rows.loc["010763615", "state"] == "unknown" and seen["010763615"] == 1
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert '"failed": 1' in summary and '"unknown": 1' in summary


def test_r9_a_worker_killed_in_the_middle_of_a_fan_out_sends_nothing_twice(
        workers, mail_sink, database_url, broker_url, tmp_path):
    from pipeline.generator.generate import generate_scenario
    from pipeline.services import confirmations, runs as services
    from pipeline.entrypoints.celery_app import app

    mail_sink.keep = True
    scenario = tmp_path / "scenario"
    generate_scenario(scenario, seed=3, pharmacies=1700, depots=20)
    now = dt.datetime(2021, 6, 16, tzinfo=dt.timezone.utc)
    session_id = load_into(scenario, database_url, now)
    engine = make_engine(database_url)
    run = services.close_session(engine, session_id, now)
    for step in (services.allocate_run, services.schedule_run, confirmations.prepare_confirmations):
        step(engine, run, now)
    total = len(outbox(database_url))
    assert total >= 4500

    email_worker = workers.start(queues="vialflow.email")
    app.conf.broker_url = broker_url
    with app.connection_for_write() as connection:
        app.send_task("email.fan_out", args=[run], connection=connection)
    wait_for(lambda: mail_sink.accepted >= 800, what="the fan-out to be under way", interval=0.01)
    workers.kill(email_worker)
    assert mail_sink.accepted < total, "the worker was killed too late to test a crash mid-fan-out"
    workers.start(queues="vialflow.email")
    wait_for(lambda: set(outbox(database_url)["state"]) <= {"sent", "unknown", "failed"},
             what="every email to be settled", timeout=300)

    rows = outbox(database_url).set_index("recipient_id")
    received = collections.Counter(recipient_of(m.content) for m in mail_sink.received)
    assert max(received.values()) == 1, "a recipient got two emails"
    sent = set(rows.index[rows["state"] == "sent"])
    assert sent <= set(received)
    assert set(received) <= sent | set(rows.index[rows["state"] == "unknown"])
    assert (rows["state"] == "failed").sum() == 0
    assert (rows["state"] == "unknown").sum() <= 64  # at most the one batch that was on the wire
