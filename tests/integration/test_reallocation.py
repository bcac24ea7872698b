"""Reallocation (R10, R11) on a real PostgreSQL, emails through a real SMTP server; and one request
through `vialflow reallocate` with RabbitMQ and a worker."""

from __future__ import annotations

import collections
import datetime as dt
import re
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import select

from pipeline.services import confirmations, runs as services
from pipeline.adapters.mail.smtp import SmtpTarget
from pipeline.domain.changes import Changes
from pipeline.services.reallocation import request_reallocation
from pipeline.entrypoints.runner import load_into
from pipeline.services.refusals import (OperatorRequired, ReasonRequired, TooManyRedistributed, UnknownOrderInChanges,
                                        UnknownSession, UnknownVaccine)
from pipeline.adapters.db import make_engine
from pipeline.adapters.db.tables import Base

from .conftest import ROOT
from .test_pipeline import EXAMPLE

T = Base.metadata.tables
pytestmark = pytest.mark.integration
NOW = dt.datetime(2021, 6, 16, tzinfo=dt.timezone.utc)
SESSION = "2021-06-14-notice-s1"


def complete(engine, run: int, sink) -> None:
    """A run's steps and its emails, the services called as the tasks call them."""
    for step in (services.allocate_run, services.schedule_run, confirmations.prepare_confirmations):
        assert step(engine, run, NOW) == services.DONE
    ids = confirmations.due(engine, run, NOW)
    confirmations.send_chunk(engine, ids, f"test-{run}", NOW, SmtpTarget.from_url(sink.url), "Test <t@example.fr>")


@pytest.fixture
def session(database_url, mail_sink):
    """The example session, closed, allocated, scheduled and confirmed (run 1)."""
    load_into(EXAMPLE, database_url, NOW)
    engine = make_engine(database_url)
    run = services.close_session(engine, SESSION, NOW)
    complete(engine, run, mail_sink)
    mail_sink.received.clear()
    return engine


def reallocate(engine, sink, **changes) -> int:
    run, created = request_reallocation(engine, SESSION, Changes.model_validate(changes), "Opératrice", "test", NOW)
    assert created
    complete(engine, run, sink)
    return run


def decisions(engine, run: int) -> pd.DataFrame:
    d, o = T["decisions"], T["orders"]
    with engine.connect() as c:
        rows = c.execute(select(d.c.order_id, d.c.rank, d.c.allocated, d.c.reason, o.c.finess, o.c.rpps, o.c.effector,
                                o.c.vaccine)
                         .join(o, (o.c.order_id == d.c.order_id) & (o.c.session_id == SESSION))
                         .where(d.c.run_id == run).order_by(d.c.rank)).all()
    return pd.DataFrame(rows, columns=["order_id", "rank", "allocated", "reason", "finess", "rpps", "effector", "vaccine"])


def deliveries(engine, run: int) -> pd.DataFrame:
    v = T["deliveries"]
    with engine.connect() as c:
        rows = c.execute(select(v.c.order_id, v.c.depot_id, v.c.delivery_date, v.c.vials, v.c.status)
                         .where(v.c.run_id == run)).all()
    return pd.DataFrame(rows, columns=["order_id", "depot_id", "delivery_date", "vials", "status"])


def recipients(sink) -> collections.Counter:
    return collections.Counter(re.search(rb"X-Vialflow-Recipient: (\S+)", m.content).group(1).decode()
                               for m in sink.received)


def expected_recipients(lines: pd.DataFrame) -> set[str]:
    named = lines[lines["effector"].isin(["medecin", "medecin_travail", "sage_femme"])]
    return set(lines["finess"]) | set(named["rpps"])


def test_r11_more_supply_serves_the_waitlisted_lines_in_order_and_emails_only_them(session, mail_sink):
    before = decisions(session, 1)
    waiting = before[(before["vaccine"] == "moderna") & (before["reason"] == "supply")]
    run = reallocate(session, mail_sink, effective="2021-06-17", supply={"moderna": 200})
    after = decisions(session, run).set_index("order_id")
    served_now = waiting[after.loc[waiting["order_id"], "allocated"].to_numpy() > 0]
    assert list(served_now["order_id"]) == list(waiting["order_id"][:3])  # three more boxes, first come first served
    changed = before[before["allocated"].to_numpy() != after.loc[before["order_id"], "allocated"].to_numpy()]
    assert set(changed["order_id"]) == set(served_now["order_id"])
    assert set(recipients(mail_sink)) == expected_recipients(changed)
    assert all(b"Annule et remplace" in m.content for m in mail_sink.received)


def test_r11_a_closed_depot_day_moves_its_deliveries_and_tells_their_recipients(session, mail_sink):
    first = deliveries(session, 1)
    day = dt.date(2021, 6, 23)
    moved = first[(first["depot_id"] == "D-OCP-34") & (first["delivery_date"] == day)]
    assert len(moved)
    run = reallocate(session, mail_sink, effective="2021-06-18",
                     depot_days=[{"depot_id": "D-OCP-34", "date": day.isoformat(), "capacity_vials": 0}])
    second = deliveries(session, run)
    assert second[(second["depot_id"] == "D-OCP-34") & (second["delivery_date"] == day)].empty
    kept = first[first["delivery_date"].notna() & (first["delivery_date"] <= dt.date(2021, 6, 18))]
    assert set(map(tuple, kept.values)) <= set(map(tuple, second.values))  # left the depot: unchanged
    lines = decisions(session, run)
    assert expected_recipients(lines[lines["order_id"].isin(moved["order_id"])]) <= set(recipients(mail_sink))
    assert max(recipients(mail_sink).values()) == 1


def test_r11_a_cancelled_line_is_refused_cancelled_and_its_recipients_are_told(session, mail_sink):
    lines = decisions(session, 1)
    line = lines[(lines["effector"] == "medecin") & (lines["allocated"] > 0)].iloc[-1]
    run = reallocate(session, mail_sink, effective="2021-06-16", cancel=[line["order_id"]])
    after = decisions(session, run).set_index("order_id")
    assert (after.loc[line["order_id"], "allocated"], after.loc[line["order_id"], "reason"]) == (0, "cancelled")
    assert {line["finess"], line["rpps"]} <= set(recipients(mail_sink))


def test_r10_a_redistribution_after_a_week_notifies_both_professionals(session, mail_sink):
    first = deliveries(session, 1)
    lines = decisions(session, 1)
    early = first[first["delivery_date"] == dt.date(2021, 6, 17)].merge(lines, on="order_id")
    line = early[early["effector"] == "medecin"].iloc[0]
    professionals = pd.read_csv(EXAMPLE / "professionals.csv", dtype=str)
    to = professionals[(professionals["finess"] == line["finess"]) & (professionals["rpps"] != line["rpps"])].iloc[0]
    run = reallocate(session, mail_sink, effective="2021-06-24",
                     redistribution=[{"order_id": line["order_id"], "vials": 1, "to_rpps": to["rpps"]}])
    got = recipients(mail_sink)
    assert {line["rpps"], to["rpps"], line["finess"]} <= set(got)
    receiver = next(m.content for m in mail_sink.received if f"Recipient: {to['rpps']}".encode() in m.content)
    assert line["order_id"].encode() in receiver and "redistribu".encode() in receiver
    with pytest.raises(TooManyRedistributed) as refused:
        request_reallocation(session, SESSION, Changes.model_validate(
            {"effective": "2021-06-24", "redistribution": [{"order_id": line["order_id"], "vials": 999,
                                                            "to_rpps": to["rpps"]}]}), "Opératrice", "test", NOW)
    assert (refused.value.order_id, refused.value.asked) == (line["order_id"], 999)
    assert "livrés une semaine ou plus avant le jeudi 24 juin 2021" in str(refused.value)
    assert run


def test_r11_the_same_request_twice_makes_one_version(session, mail_sink):
    changes = Changes.model_validate({"effective": "2021-06-17", "supply": {"moderna": 190}})
    first, created = request_reallocation(session, SESSION, changes, "Opératrice", "plus de Moderna", NOW)
    again, created_again = request_reallocation(session, SESSION, changes, "Opérateur", "la même", NOW)
    assert created and not created_again and first == again


@pytest.mark.parametrize("session_id, changes, operator, reason, refusal, said", [
    ("no-such-session", {"effective": "2021-06-17"}, "Op", "r", UnknownSession, "Session inconnue : no-such-session."),
    (SESSION, {"effective": "2021-06-17", "cancel": ["A-999999"]}, "Op", "r", UnknownOrderInChanges,
     f"Ligne inconnue : A-999999 n'est pas une ligne de la session {SESSION}."),
    (SESSION, {"effective": "2021-06-17", "supply": {"sputnik": 10}}, "Op", "r", UnknownVaccine,
     "Stock : vaccin inconnu « sputnik »"),
    (SESSION, {"effective": "2021-06-17"}, "", "r", OperatorRequired, "Un nom d'opérateur est obligatoire"),
    (SESSION, {"effective": "2021-06-17"}, "Op", " ", ReasonRequired, "Un motif est obligatoire"),
])
def test_r11_a_bad_request_says_why_and_changes_nothing(session, session_id, changes, operator, reason, refusal, said):
    with pytest.raises(refusal) as refused:
        request_reallocation(session, session_id, Changes.model_validate(changes), operator, reason, NOW)
    assert str(refused.value).startswith(said)
    with session.connect() as c:
        assert c.execute(select(T["runs"].c.version)).scalars().all() == [1]


def test_r11_negative_supply_is_refused_by_the_changes_file(tmp_path):
    from pipeline.adapters.files.changes import read_changes
    from pipeline.adapters.files.scenario import ScenarioError

    path = tmp_path / "changes.toml"
    path.write_text('effective = "2021-06-17"\nsupply = { moderna = -5 }\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"changes.toml: field supply.moderna"):
        read_changes(path)


def test_r11_vialflow_reallocate_goes_through_the_queue_and_keeps_every_run(workers, database_url, broker_url,
                                                                            mail_sink, tmp_path):
    workers.start()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline.entrypoints.cli"]
    urls = ["--database-url", database_url, "--broker-url", broker_url]
    first = subprocess.run([*command, "run", str(EXAMPLE), "--out", str(out), *urls], cwd=ROOT, env=workers.env,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    emails_before = len(list((out / "mail").glob("*.eml")))
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = "2021-06-17"\nsupply = { moderna = 200 }\n', encoding="utf-8")
    again = subprocess.run([*command, "reallocate", SESSION, str(changes), "--operator", "Opératrice", "--reason",
                            "livraison supplémentaire", "--out", str(out), *urls], cwd=ROOT, env=workers.env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["1", "2"]
    assert (out / "allocations.csv").read_bytes() == (out / "runs" / "2" / "allocations.csv").read_bytes()
    assert (out / "runs" / "1" / "allocations.csv").read_bytes() != (out / "runs" / "2" / "allocations.csv").read_bytes()
    new_emails = len(list((out / "mail").glob("*.eml"))) - emails_before
    assert 0 < new_emails < emails_before
    bad = subprocess.run([*command, "reallocate", SESSION, str(changes), "--operator", "", "--reason", "x",
                          "--out", str(out), *urls], cwd=ROOT, env=workers.env, capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "(--operator)" in bad.stderr
