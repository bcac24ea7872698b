"""The console in its deployed form: PostgreSQL (migration 0004 included), a reallocation confirmed by
an operator handed to a `celery worker` through RabbitMQ, its emails sent once beat's tick runs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from pipeline.adapters.db import make_engine
from pipeline.entrypoints.celery_app import app as celery
from pipeline.entrypoints.console.app import create_app
from pipeline.entrypoints.console.workers import Workers
from pipeline.entrypoints.runner import load_into
from pipeline.domain.vocabulary import RunStep
from pipeline.services import chain, confirmations, runs as services
from pipeline.services.accounts import add_user
from pipeline.settings import Settings

from .conftest import wait_for
from .test_pipeline import EXAMPLE
from .test_reallocation import NOW, SESSION, complete

pytestmark = pytest.mark.integration


def test_a_reallocation_confirmed_in_the_console_reaches_the_workers_through_rabbitmq_and_its_emails_settle(
        database_url, broker_url, workers, mail_sink):
    load_into(EXAMPLE, database_url, NOW)
    engine = make_engine(database_url)
    complete(engine, services.close_session(engine, SESSION, NOW), mail_sink)
    mail_sink.received.clear()
    add_user(engine, "olivier", "operator", "operator-password-1", dt.datetime.now(dt.timezone.utc))
    with engine.connect() as c:
        order_id = c.execute(text("SELECT order_id FROM decisions WHERE allocated > 0 ORDER BY rank LIMIT 1")).scalar()
    workers.start()
    with TestClient(create_app(engine, Workers(Settings(database_url=database_url, broker_url=broker_url))),
                    follow_redirects=False) as client:
        assert client.post("/login", data={"username": "olivier", "password": "operator-password-1"}).status_code == 303
        answer = client.post(f"/api/sessions/{SESSION}/reallocations",
                             headers={"X-CSRF-Token": client.cookies["csrftoken"]},
                             json={"changes": {"effective": "2021-06-16", "cancel": [order_id]},
                                   "reason": "Commande retirée par téléphone", "preview": False})
        assert answer.status_code == 200, answer.text
        run = answer.json()["run"]
        wait_for(lambda: services.progress(engine, SESSION)["done"] is RunStep.PREPARE,
                 what="the workers to prepare run 2", timeout=180)
        celery.send_task(chain.TICK)  # what beat does every 30 s
        wait_for(lambda: (counts := confirmations.outbox_counts(engine, run)) and set(counts) <= {"sent"},
                 what="run 2's emails", timeout=180)
        page = client.get(f"/sessions/{SESSION}/versions/2/suivi")
        assert 'id="settled"' in page.text
    with engine.connect() as c:
        assert c.execute(text("SELECT operator FROM runs WHERE id = :r"), {"r": run}).scalar() == "olivier"
        assert c.execute(text("SELECT reason FROM decisions WHERE run_id = :r AND order_id = :o"),
                         {"r": run, "o": order_id}).scalar() == "cancelled"
    assert len(mail_sink.received) == sum(confirmations.outbox_counts(engine, run).values()) > 0


def test_on_postgresql_parallel_wrong_passwords_are_counted_under_a_row_lock_and_a_report_is_stored_once(
        database_url, mail_sink, tmp_path):
    """`vialflow console --database-url` on PostgreSQL: of 20 parallel wrong passwords from one
    address, no more than five reach the hash (`FOR UPDATE` on the throttle's rows); the owner signs
    in from another address; three concurrent requests for a report get the same stored bytes."""
    import threading

    import httpx2 as httpx

    from tests.console.conftest import serving

    load_into(EXAMPLE, database_url, NOW)
    engine = make_engine(database_url)
    complete(engine, services.close_session(engine, SESSION, NOW), mail_sink)
    add_user(engine, "olivier", "operator", "operator-password-1", dt.datetime.now(dt.timezone.utc))

    def client(base: str, source: str) -> httpx.Client:
        return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=source), timeout=120)

    with serving(None, tmp_path / "console.log", "--database-url", database_url, "--sign-in-slots", "32") as (base, _):
        start, statuses = threading.Barrier(20), []

        def attempt() -> None:
            with client(base, "127.0.0.21") as mine:
                start.wait()
                statuses.append(mine.post("/login", data={"username": "olivier", "password": "wrong-password-1"})
                                .status_code)

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 20, statuses
        owners = [client(base, f"127.0.0.{n}") for n in (22, 23, 24)]
        for owner in owners:
            assert owner.post("/login", data={"username": "olivier", "password": "operator-password-1"}
                              ).status_code == 303
        ready, reports = threading.Barrier(3), []

        def report(owner) -> None:
            ready.wait()
            reports.append(owner.get(f"/sessions/{SESSION}/versions/1/rapport").content)

        threads = [threading.Thread(target=report, args=(owner,)) for owner in owners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for owner in owners:
            owner.close()
    assert len(set(reports)) == 1 and b"<svg" in reports[0]
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM run_reports")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM actions WHERE action = 'sign_in_refused'")).scalar() \
            == statuses.count(401)
    engine.dispose()
