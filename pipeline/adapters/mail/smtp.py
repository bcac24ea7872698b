"""Send many prebuilt messages over a few persistent SMTP connections, each message's outcome reported
as soon as it is known (the outcomes themselves: transaction.py)."""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from .transaction import Connection, Dropped, Outcome, describe, transaction

__all__ = ["Outcome", "SmtpTarget", "send_all", "send_all_sync"]
log = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on"}
_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class SmtpTarget:
    """Where to send: `smtp://host:port`, `smtp+starttls://` (or `?starttls=1`), `smtps://` (implicit TLS)."""
    host: str
    port: int
    tls: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # DKIM: message bytes in, signed bytes out (signing.Signer), applied as each message goes out.
    sign: Callable[[bytes], bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_url(cls, url: str) -> "SmtpTarget":
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        starttls = any(v.lower() in _TRUE for v in parse_qs(parts.query).get("starttls", []))
        tls = {"smtp": "starttls" if starttls else "none", "smtp+starttls": "starttls", "smtps": "tls"}.get(scheme)
        if tls is None:
            raise ValueError(f"SMTP URL: unknown scheme {parts.scheme!r} (smtp, smtp+starttls or smtps expected)")
        if not parts.hostname:
            raise ValueError("SMTP URL: no host")
        try:
            port = parts.port or _DEFAULT_PORTS[tls]
        except ValueError:
            raise ValueError("SMTP URL: the port is not a number between 0 and 65535") from None
        return cls(host=parts.hostname, port=port, tls=tls,  # type: ignore[arg-type]
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password is not None else None)


async def send_all(target: SmtpTarget, messages: Iterable[tuple[int, str, str, bytes]], *,
                   connections: int = 8, timeout: float = 30,
                   on_result: Callable[[int, Outcome, str], None] | None = None) -> dict[int, tuple[Outcome, str]]:
    """Send each (outbox id, envelope sender, envelope recipient, message bytes) once; the outcome and
    a short detail (SMTP code and text, addresses removed) per id. The retry loop is the caller's.

    `messages` may be a generator that renders each message when a connection is ready for it: the
    rendering then fills the time spent waiting for the server's replies (it must not raise).
    `on_result(id, outcome, detail)` is called as soon as each outcome is known, so that the caller
    can record it before the next message goes out."""
    feed = _Feed(messages)
    results: dict[int, tuple[Outcome, str]] = _Results(on_result)
    await asyncio.gather(*(_worker(target, feed, results, timeout) for _ in range(max(1, connections))))
    for item in feed.rest():  # every connection failed: nothing of these went out
        results[item[0]] = (Outcome.RETRY, feed.last_error)
    counts = collections.Counter(outcome.value for outcome, _ in results.values())
    log.info("smtp: %d messages, %s", len(results), dict(sorted(counts.items())))
    return results


def send_all_sync(target: SmtpTarget, messages: Iterable[tuple[int, str, str, bytes]], *,
                  connections: int = 8, timeout: float = 30,
                  on_result: Callable[[int, Outcome, str], None] | None = None) -> dict[int, tuple[Outcome, str]]:
    """`send_all` from synchronous code (a Celery task): runs its own event loop."""
    return asyncio.run(send_all(target, messages, connections=connections, timeout=timeout, on_result=on_result))


class _Results(dict):
    """The outcomes so far, each also handed to the caller's callback as it arrives."""

    def __init__(self, callback: Callable[[int, Outcome, str], None] | None) -> None:
        super().__init__()
        self._callback = callback

    def __setitem__(self, key: int, value: tuple[Outcome, str]) -> None:
        super().__setitem__(key, value)
        if self._callback is not None:
            self._callback(key, *value)


class _Feed:
    """The messages, one at a time; one that a worker could not start (no connection) goes back first."""

    def __init__(self, messages: Iterable[tuple[int, str, str, bytes]]) -> None:
        self._items = iter(messages)
        self._back: collections.deque = collections.deque()
        self.last_error = "not attempted"

    def take(self) -> tuple[int, str, str, bytes] | None:
        return self._back.popleft() if self._back else next(self._items, None)

    def put_back(self, item: tuple[int, str, str, bytes], error: str) -> None:
        self._back.appendleft(item)
        self.last_error = error

    def rest(self) -> Iterator[tuple[int, str, str, bytes]]:
        yield from self._back
        yield from self._items


async def _worker(target: SmtpTarget, feed: _Feed, results: dict, timeout: float) -> None:
    """One connection, opened for the first message and kept for the next ones."""
    connection: Connection | None = None
    try:
        while (item := feed.take()) is not None:
            message_id, sender, recipient, data = item
            if target.sign is not None:
                try:
                    data = target.sign(data)
                except ValueError as error:  # a message dkimpy cannot sign is not sent unsigned
                    results[message_id] = (Outcome.FAILED, f"not sent: {describe(error)}")
                    continue
            for attempt in (1, 2):
                if connection is None or not connection.is_open:
                    try:
                        connection = await Connection.open(target, timeout)
                    except Exception as error:  # noqa: BLE001 - any connect failure: leave the rest to others
                        feed.put_back(item, describe(error))
                        log.warning("smtp: cannot connect to %s:%d: %s", target.host, target.port, feed.last_error)
                        return
                try:
                    results[message_id] = await transaction(connection, sender, recipient, data, timeout)
                    break
                except Dropped as dropped:
                    connection.close()
                    # A reused connection may have been closed by the server meanwhile: one fresh try.
                    if attempt == 2:
                        results[message_id] = (Outcome.RETRY, str(dropped))
    finally:
        if connection is not None:
            await connection.quit(min(timeout, 5))
