"""Sending the confirmations (R9) through a fake SMTP port: each outcome recorded, nothing sent twice,
nothing left stuck when the sender dies."""

from __future__ import annotations

import datetime as dt
import email

import pytest

from pipeline.adapters.db import actions, outbox, runs, sessions
from pipeline.adapters.mail.smtp import Outcome
from pipeline.services import confirmations
from pipeline.services.refusals import NotResendable, OperatorRequired, UnknownSession
from tests.services.conftest import CLOSED
from tests.services.fakes import FakeSmtp, SenderDied

SENDER = "Vaccination <ne-pas-repondre@vialflow.example.fr>"
DELAYS = (30, 120)
LATER = CLOSED + dt.timedelta(minutes=5)


def rows(db, run: int):
    with db.connect() as c:
        return outbox.outbox_rows(c, run)


def addresses(db, run: int) -> dict[int, str]:
    """Each outbox row's address, read back from the registers."""
    with db.connect() as c:
        written = outbox.outbox_rows(c, run)
        session_id = runs.run_row(c, run).session_id
        found = {}
        for name, kind in (("pharmacies", True), ("professionals", False)):
            mine = written[(written["recipient_kind"] == "officine") == kind]
            contacts = sessions.contacts(c, name, session_id, mine["recipient_id"].tolist())
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
        stored = outbox.set_index("id").loc[outbox_id, "message_id"]  # its right-hand side put on the sending domain
        assert message["Message-ID"] == stored.partition("@")[0] + "@vialflow.example.fr>"


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
        outbox.claim(c, ids, "task-lost", CLOSED, LATER)
        outbox.mark_sending(c, ids, "task-lost", LATER)
    fake = FakeSmtp()
    confirmations.send_chunk(db, ids, "task-lost", CLOSED, None, SENDER, delays=DELAYS, send=fake)
    assert fake.received == []
    assert set(rows(db, prepared).set_index("id").loc[ids, "state"]) == {"unknown"}


def states(db, run: int, ids: list[int]) -> set[str]:
    return set(rows(db, run).set_index("id").loc[ids, "state"])


def test_a_claim_whose_lease_ran_out_is_handed_out_again_and_sent_once(db, prepared):
    confirmations.start_sending(db, prepared, CLOSED)
    ids = confirmations.hand_out(db, prepared, CLOSED, lease=60)
    assert ids and confirmations.hand_out(db, prepared, CLOSED, lease=60) == []  # held by the queue
    with db.begin() as c:
        outbox.claim(c, ids, "task-gone", CLOSED, CLOSED + dt.timedelta(seconds=60))
    assert confirmations.recover(db, CLOSED + dt.timedelta(seconds=59))["pending"] == 0
    found = confirmations.recover(db, CLOSED + dt.timedelta(seconds=61))
    assert found["pending"] == len(ids) and found["runs"] == [prepared]
    fake = FakeSmtp()
    later = CLOSED + dt.timedelta(seconds=61)
    confirmations.send_chunk(db, confirmations.hand_out(db, prepared, later, 60), "task-2", later, None, SENDER,
                             delays=DELAYS, send=fake)
    assert sorted(i for i, _, _ in fake.received) == sorted(ids)
    assert states(db, prepared, ids) == {"sent"}


def test_rows_going_out_when_their_lease_ran_out_are_unknown_and_never_handed_out_again(db, prepared):
    ids = rows(db, prepared)["id"].tolist()[:4]
    with db.begin() as c:
        outbox.claim(c, ids, "task-gone", CLOSED, LATER)
        assert outbox.mark_sending(c, ids[:2], "task-gone", LATER) == set(ids[:2])
    found = confirmations.recover(db, LATER + dt.timedelta(seconds=1))
    assert (found["unknown"], found["pending"]) == (2, 2)
    assert states(db, prepared, ids[:2]) == {"unknown"}
    assert not set(ids[:2]) & set(confirmations.hand_out(db, prepared, LATER + dt.timedelta(seconds=1), 60))


def test_a_sender_whose_claim_was_taken_over_sends_none_of_the_rows_it_lost(db, prepared):
    ids = rows(db, prepared)["id"].tolist()[:3]
    with db.begin() as c:
        outbox.claim(c, ids, "slow", CLOSED, CLOSED + dt.timedelta(seconds=1))
    confirmations.recover(db, CLOSED + dt.timedelta(seconds=2))
    with db.begin() as c:
        outbox.claim(c, ids, "fast", CLOSED, LATER)
        assert outbox.mark_sending(c, ids, "slow", LATER) == set()


def test_an_embedded_rerun_takes_back_every_claim_of_its_session_whatever_the_lease(db, prepared):
    ids = rows(db, prepared)["id"].tolist()[:3]
    with db.begin() as c:
        outbox.claim(c, ids, "dead", CLOSED, LATER)
        outbox.mark_sending(c, ids[:1], "dead", LATER)
    session_id = rows_session(db, prepared)
    found = confirmations.recover(db, CLOSED, session_id=session_id, everything=True)
    assert (found["unknown"], found["pending"]) == (1, 2)


def rows_session(db, run: int) -> str:
    with db.connect() as c:
        return runs.run_row(c, run).session_id


def test_the_run_is_stamped_settled_once_every_email_is_sent_failed_or_unknown(db, prepared):
    confirmations.start_sending(db, prepared, CLOSED)
    assert not confirmations.settle(db, prepared, CLOSED)
    send(db, prepared, FakeSmtp())
    assert confirmations.settle(db, prepared, CLOSED)
    assert not confirmations.settle(db, prepared, CLOSED)  # once


def test_a_deliberate_resend_reopens_only_unknown_or_failed_rows_and_records_who_and_why(db, prepared):
    everyone = rows(db, prepared)
    to = addresses(db, prepared)
    refused = to[int(everyone["id"].iloc[0])]
    send(db, prepared, FakeSmtp(answers={refused: Outcome.FAILED}))
    session_id = rows_session(db, prepared)
    with pytest.raises(OperatorRequired):
        confirmations.resend(db, session_id, None, None, "", "no reason", CLOSED)
    with pytest.raises(NotResendable) as sent:
        confirmations.resend(db, session_id, None, "sent", "Alice", "again", CLOSED)
    assert sent.value.state == "sent" and "« envoyé »" in str(sent.value)
    reopened = confirmations.resend(db, session_id, None, None, "Alice", "address fixed", CLOSED)
    assert reopened == [int(everyone["id"].iloc[0])]
    assert states(db, prepared, reopened) == {"pending"}
    with db.connect() as c:
        action = actions.actions(c, action="resend").iloc[0]
    assert (action["actor"], action["reason"], action["detail"]) == ("Alice", "address fixed", {"outbox_ids": reopened})
    assert refused not in str(action.to_dict())
    fake = FakeSmtp()
    send(db, prepared, fake)
    assert [i for i, _, _ in fake.received] == reopened


def test_the_listing_shows_addresses_only_when_asked(db, prepared):
    session_id = rows_session(db, prepared)
    plain = confirmations.outbox_listing(db, session_id)
    assert "email" not in plain.columns and len(plain) == len(rows(db, prepared))
    shown = confirmations.outbox_listing(db, session_id, addresses=True)
    assert dict(zip(shown["id"], shown["email"])) == addresses(db, prepared)
    with pytest.raises(UnknownSession):
        confirmations.outbox_listing(db, "no-such-session")


def test_a_windowed_hand_out_keeps_at_most_the_window_in_the_queue_and_each_row_goes_once(db, prepared):
    confirmations.start_sending(db, prepared, CLOSED)
    total = len(rows(db, prepared))
    assert total > 5
    first = confirmations.hand_out(db, prepared, CLOSED, lease=60, window=3)
    assert len(first) == 3 and confirmations.hand_out(db, prepared, CLOSED, lease=60, window=3) == []  # full
    fake = FakeSmtp()
    confirmations.send_chunk(db, first[:2], "task-1", CLOSED, None, SENDER, delays=DELAYS, send=fake)
    second = confirmations.hand_out(db, prepared, CLOSED, lease=60, window=3)  # room for the two sent
    assert len(second) == 2 and not set(second) & set(first)
    handed = first + second
    while more := confirmations.hand_out(db, prepared, CLOSED, lease=60, window=len(handed) + 3):
        handed += more
    assert sorted(handed) == sorted(rows(db, prepared)["id"]) and len(set(handed)) == total
