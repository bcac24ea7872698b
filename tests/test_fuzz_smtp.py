"""The SMTP sender against a hostile server (tests/fuzz/smtp.py): a few hundred scripts per run, and each
fault it once found kept as a plain example."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.adapters.mail.smtp import Outcome
from tests.fuzz.smtp import EXTRA, KINDS, MALFORMED, ODD_CODES, TARGETS, converse

TARGET = TARGETS["smtp_replies"]
PLAIN, PIPELINED_THREE = 0, 7  # the settings byte: one message one command at a time; three messages pipelined
VALID = ("valid", 0)


def script(settings_byte: int, *steps: tuple[str, int]) -> bytes:
    """The input that makes the server answer its steps (greeting, EHLO, MAIL, RCPT, DATA, data...) so."""
    return bytes([settings_byte]) + b"".join(bytes([KINDS.index(kind), param]) for kind, param in steps)


def at_data(kind: str, param: int) -> bytes:
    return script(PLAIN, VALID, VALID, VALID, VALID, VALID, (kind, param))


def test_every_seed_and_three_hundred_of_their_mutations_keep_the_sender_honest():
    rng = random.Random(20210614)
    seeds = TARGET.seeds()
    for data in seeds + [TARGET.mutate(rng, rng.choice(seeds)) for _ in range(300)]:
        try:
            TARGET.check(data)
        except AssertionError as finding:
            raise AssertionError(f"input {data!r}: {finding}") from None


@given(st.binary(max_size=48))
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_any_script_keeps_the_sender_honest(data):
    TARGET.check(data)


# -- what the fuzzing found, each kept as an example --------------------------------------------------------------

@pytest.mark.parametrize("reply", [b"2500 ok", b"250\tok", b"550-no\r\n250 ok", b"25\r\n0 ok"])
def test_a_malformed_reply_to_the_data_is_unknown_never_sent(reply):
    _, _, results, _ = asyncio.run(converse(at_data("malformed", MALFORMED.index(reply))))
    assert results[0][0] == Outcome.UNKNOWN and "malformed reply" in results[0][1]


def test_a_reply_of_more_than_64_kb_is_a_fault_not_a_250():
    _, _, results, _ = asyncio.run(converse(at_data("huge_multiline", 0)))
    assert results[0][0] == Outcome.UNKNOWN and "reply too long" in results[0][1]


@pytest.mark.parametrize("code", [251, 221, 354])
def test_only_a_250_to_the_data_means_sent(code):
    _, _, results, _ = asyncio.run(converse(at_data("odd_code", ODD_CODES.index(code))))
    assert results[0][0] == Outcome.UNKNOWN and results[0][1].endswith(f"{code} 4.0.0 odd")


def test_a_reply_nobody_asked_for_is_never_taken_for_the_reply_to_the_data():
    """354 and an extra 250 to DATA, then 550 to the data: the extra 250 once made the message `sent`.
    Now the connection is dropped before the data, and the message goes on a fresh one."""
    data = script(PLAIN, VALID, VALID, VALID, VALID, ("two_replies", EXTRA.index(b"250 again\r\n")),
                  ("odd_code", ODD_CODES.index(550)))
    server, _, results, _ = asyncio.run(converse(data))
    assert results[0] == (Outcome.SENT, "250 2.0.0 queued")
    assert [code for _, code in server.delivered] == [250]


def test_a_250_to_data_is_out_of_step_and_retried_on_a_fresh_connection_not_failed():
    data = script(PLAIN, VALID, VALID, VALID, VALID, ("odd_code", ODD_CODES.index(250)))
    server, _, results, _ = asyncio.run(converse(data))
    assert results[0] == (Outcome.SENT, "250 2.0.0 queued") and len(server.delivered) == 1


def test_a_connection_whose_ehlo_reply_is_too_long_is_closed():
    """aiosmtplib raises for a reply over its limit: the connection it had opened was left open."""
    server, _, results, _ = asyncio.run(converse(script(PLAIN, VALID, ("huge_multiline", 0))))
    assert results[0][0] == Outcome.RETRY and "too long" in results[0][1]
    assert all(task.done() for task in server.handlers)


def test_a_pipelined_refusal_answered_334_to_data_drops_the_connection_without_rset():
    """The server awaits data after any 3xx, not only 354: an RSET would be read as message data."""
    data = script(PIPELINED_THREE, VALID, VALID, ("odd_code", ODD_CODES.index(550)), VALID,
                  ("odd_code", ODD_CODES.index(334)))
    server, _, results, _ = asyncio.run(converse(data))
    assert results[0] == (Outcome.FAILED, "550 4.0.0 odd") and results[1][0] == results[2][0] == Outcome.SENT
    assert b"RSET" not in b"".join(server.heard)
