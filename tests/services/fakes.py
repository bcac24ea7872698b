"""Fakes of the ports the services take: an SMTP sender that answers as told and keeps what it got."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.adapters.mail.smtp import Outcome


class SenderDied(Exception):
    """The fake sender stopped in the middle of a chunk, as a killed process or a lost network would."""


@dataclass
class FakeSmtp:
    """Called as `send_all_sync` is: each message is answered with `answers[recipient]` (sent by
    default); a message that went out (sent, or unknown) is kept in `received`. With `die_after`,
    it raises after answering that many messages."""

    answers: dict[str, Outcome] = field(default_factory=dict)
    die_after: int | None = None
    received: list[tuple[int, str, bytes]] = field(default_factory=list)
    answered: int = 0

    def __call__(self, target, messages, *, connections: int, on_result) -> dict:
        for outbox_id, _sender, recipient, data in messages:
            if self.die_after is not None and self.answered >= self.die_after:
                raise SenderDied(f"stopped after {self.answered} messages")
            outcome = self.answers.get(recipient, Outcome.SENT)
            if outcome in (Outcome.SENT, Outcome.UNKNOWN):
                self.received.append((outbox_id, recipient, data))
            self.answered += 1
            on_result(outbox_id, outcome, f"{outcome.value} (fake server)")
        return {}
