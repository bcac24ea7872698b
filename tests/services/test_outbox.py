"""Sending the confirmations (R9) through a fake SMTP port: each outcome recorded, nothing sent twice,
nothing left stuck when the sender dies."""

from __future__ import annotations

import datetime as dt
import email

import pytest

from pipeline.adapters.db import queries
from pipeline.adapters.mail.smtp import Outcome
from pipeline.services import confirmations
from tests.services.conftest import CLOSED
from tests.services.fakes import FakeSmtp, SenderDied

SENDER = "Vaccination <ne-pas-repondre@vialflow.example.fr>"
DELAYS = (30, 120)


def rows(db, run: int):
    with db.connect() as c:
        return queries.outbox_rows(c, run)


def addresses(db, run: int) -> dict[int, str]:
    """Each outbox row's address, read back from the registers."""
    with db.connect() as c:
        outbox = queries.outbox_rows(c, run)
        session_id = queries.run_row(c, run).session_id
        found = {}
        for name, kind in (("pharmacies", True), ("professionals", False)):
            mine = outbox[(outbox["recipient_kind"] == "officine") == kind]
            contacts = queries.contacts(c, name, session_id, mine["recipient_id"].tolist())
            found |= {int(i): contacts[r]["email"] for i, r in zip(mine["id"], mine["recipient_id"])}
    return found


def send(db, run: int, fake: FakeSmtp, claimant: str = "task-1", now: dt.datetime = CLOSED) -> dict:
    ids = confirmations.due(db, run, now)
    return confirmations.send_chunk(db, ids, claimant, now, None, SENDER, delays=DELAYS, send=fake)


def test_r9_each_due_row_is_sent_once_and_recorded_sent(db, prepared):
    fake = FakeSmtp()
    counts = send(db, prepared, fake)
    outbox = rows(db, prepared)
    assert counts == {"sent": len(outbox)}
    assert set(outbox["state"]) == {"sent"} and set(outbox["attempts"]) == {1}
    assert sorted(i for i, _, _ in fake.received) == sorted(outbox["id"])
    to = addresses(db, prepared)
    for outbox_id, recipient, data in fake.received:
        message = email.message_from_bytes(data)
        assert recipient == to[outbox_id]
        assert message["Message-ID"] == outbox.set_index("id").loc[outbox_id, "message_id"]


def test_r9_the_same_chunk_delivered_again_sends_nothing_more(db, prepared):
    send(db, prepared, FakeSmtp())
    again = FakeSmtp()
    ids = rows(db, prepared)["id"].tolist()
    assert confirmations.send_chunk(db, ids, "task-1", CLOSED, None, SENDER, delays=DELAYS, send=again) == {}
    assert again.received == []


def test_r9_a_temporary_refusal_is_tried_again_after_its_delay_and_a_permanent_one_never(db, prepared):
    to = addresses(db, prepared)
    first, second = sorted(to)[:2]
    fake = FakeSmtp(answers={to[first]: Outcome.RETRY, to[second]: Outcome.FAILED})
    send(db, prepared, fake)
    outbox = rows(db, prepared).set_index("id")
    assert outbox.loc[first, "state"] == "retry" and outbox.loc[second, "state"] == "failed"
    assert confirmations.due(db, prepared, CLOSED + dt.timedelta(seconds=DELAYS[0] - 1)) == []
    later = CLOSED + dt.timedelta(seconds=DELAYS[0])
    assert confirmations.due(db, prepared, later) == [first]
    retried = FakeSmtp()
    send(db, prepared, retried, claimant="task-2", now=later)
    assert [i for i, _, _ in retried.received] == [first]
    assert rows(db, prepared).set_index("id").loc[first, "attempts"] == 2


def test_r9_a_temporary_refusal_after_the_last_delay_has_failed(db, prepared):
    to = addresses(db, prepared)
    only = min(to)
    fake = FakeSmtp(answers={to[only]: Outcome.RETRY})
    now = CLOSED
    for attempt, delay in enumerate((*DELAYS, None), start=1):
        confirmations.send_chunk(db, [only], f"task-{attempt}", now, None, SENDER, delays=DELAYS, send=fake)
        if delay is not None:
            now += dt.timedelta(seconds=delay)
    row = rows(db, prepared).set_index("id").loc[only]
    assert (row["state"], row["attempts"]) == ("failed", len(DELAYS) + 1)


def test_a_sender_dying_mid_chunk_leaves_sent_rows_sent_unanswered_ones_unknown_and_the_rest_due(db, prepared):
    total = len(rows(db, prepared))
    assert total > confirmations.BATCH, "the scenario must need more than one batch"
    fake = FakeSmtp(die_after=10)
    with pytest.raises(SenderDied):
        send(db, prepared, fake)
    states = rows(db, prepared)["state"].value_counts().to_dict()
    # The first batch was marked `sending` before it went out: 10 answered, the rest of it may have gone.
    assert states == {"sent": 10, "unknown": confirmations.BATCH - 10, "retry": total - confirmations.BATCH}
    again = FakeSmtp()
    send(db, prepared, again, claimant="task-2", now=CLOSED + dt.timedelta(seconds=DELAYS[0]))
    assert len(again.received) == total - confirmations.BATCH
    assert not {i for i, _, _ in fake.received} & {i for i, _, _ in again.received}
    assert rows(db, prepared)["state"].value_counts().to_dict() == {
        "sent": total - confirmations.BATCH + 10, "unknown": confirmations.BATCH - 10}


def test_rows_of_a_claimant_lost_while_sending_are_unknown_when_its_chunk_comes_back(db, prepared):
    ids = rows(db, prepared)["id"].tolist()[:3]
    with db.begin() as c:
        queries.claim(c, ids, "task-lost", CLOSED)
        queries.mark_sending(c, ids)
    fake = FakeSmtp()
    confirmations.send_chunk(db, ids, "task-lost", CLOSED, None, SENDER, delays=DELAYS, send=fake)
    assert fake.received == []
    assert set(rows(db, prepared).set_index("id").loc[ids, "state"]) == {"unknown"}
