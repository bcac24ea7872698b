"""Send many prebuilt messages over a few persistent SMTP connections and classify each outcome.

The outcome says whether a message may be sent again: RETRY only when the server cannot have
accepted it (a 4xx reply, or the connection lost before the message data went out); UNKNOWN when
the data went out but no final reply came back: such a message is never resent blindly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import socket
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Callable, Iterable, Iterator, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

log = logging.getLogger(__name__)

_LINE_ENDS = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_ADDRESSES = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_TRUE = {"1", "true", "yes", "on"}
_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class Outcome(str, Enum):
    SENT = "sent"
    RETRY = "retry"  # the server did not take it: send again later
    FAILED = "failed"  # a permanent refusal (5xx)
    UNKNOWN = "unknown"  # the data went out, no final reply: never resend blindly


@dataclass(frozen=True)
class SmtpTarget:
    """Where to send: `smtp://host:port`, `smtp+starttls://` (or `?starttls=1`), `smtps://` (implicit TLS)."""
    host: str
    port: int
    tls: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

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


class _Dropped(Exception):
    """The connection was lost or timed out before the message data went out: safe to send again."""


async def _worker(target: SmtpTarget, feed: _Feed, results: dict, timeout: float) -> None:
    """One connection, opened for the first message and kept for the next ones."""
    smtp: aiosmtplib.SMTP | None = None
    try:
        while (item := feed.take()) is not None:
            message_id, sender, recipient, data = item
            for attempt in (1, 2):
                if smtp is None or not smtp.is_connected:
                    try:
                        smtp = await _connect(target, timeout)
                    except Exception as error:  # noqa: BLE001 - any connect failure: leave the rest to others
                        feed.put_back(item, _describe(error))
                        log.warning("smtp: cannot connect to %s:%d: %s", target.host, target.port, feed.last_error)
                        return
                try:
                    results[message_id] = await _transaction(smtp, sender, recipient, data, timeout)
                    break
                except _Dropped as dropped:
                    smtp = _discard(smtp)
                    # A reused connection may have been closed by the server meanwhile: one fresh try.
                    if attempt == 2:
                        results[message_id] = (Outcome.RETRY, str(dropped))
    finally:
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit(timeout=min(timeout, 5))
            except Exception:  # noqa: BLE001 - the messages are done; a failed QUIT changes nothing
                smtp.close()


async def _connect(target: SmtpTarget, timeout: float) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(hostname=target.host, port=target.port, timeout=timeout,
                           use_tls=target.tls == "tls", start_tls=target.tls == "starttls",
                           validate_certs=True, username=target.username, password=target.password,
                           local_hostname=_local_hostname())
    await smtp.connect()
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await smtp.helo()
    return smtp


async def _transaction(smtp: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes,
                       timeout: float) -> tuple[Outcome, str]:
    """MAIL, RCPT, DATA, then the message: each step awaited on its own, so that a lost connection is
    known to be before the data (raised as _Dropped: RETRY) or after it (UNKNOWN). One timer for the
    whole transaction rather than aiosmtplib's one per command, which was most of its cost per command."""
    try:
        mail = (b"MAIL", b"FROM:<%s>" % sender.encode("ascii"))
        rcpt = (b"RCPT", b"TO:<%s>" % recipient.encode("ascii"))
    except UnicodeEncodeError:  # SMTPUTF8 is not used: no such address here
        return Outcome.FAILED, "invalid envelope address (not ASCII)"
    if not data.isascii() and smtp.supports_extension("8bitmime"):
        mail += (b"BODY=8BITMIME",)
    payload = _payload(data)
    refused = None
    data_sent = False
    try:
        async with asyncio.timeout(timeout):
            for command, expected in ((mail, 2), (rcpt, 2), ((b"DATA",), 3)):  # 2xx (251, 252 too), 354
                reply = await smtp.execute_command(*command, timeout=None)
                if reply.code // 100 != expected:
                    refused = reply
                    break
            else:
                protocol = smtp.protocol
                if protocol is None:
                    raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                data_sent = True  # from here on the server may hold the whole message
                protocol.write(payload)
                reply = await protocol.read_response(timeout=None)
    except ValueError as error:  # a control character in an address: aiosmtplib sent nothing of it
        await _reset(smtp, timeout)
        return Outcome.FAILED, f"invalid envelope address ({error})"
    except (aiosmtplib.SMTPException, ConnectionError, OSError, TimeoutError) as error:
        smtp.close()
        if not data_sent:
            raise _Dropped(_describe(error)) from error
        return Outcome.UNKNOWN, f"no reply after the message data: {_describe(error)}"
    if refused is not None:
        await _reset(smtp, timeout)
        return _refused(refused.code, refused.message)
    if reply.code == 421:
        smtp.close()
    return (Outcome.SENT, _detail(reply.code, reply.message)) if 200 <= reply.code < 300 \
        else _refused(reply.code, reply.message)


def _payload(data: bytes) -> bytes:
    """The message as SMTP DATA: CRLF line ends, leading dots doubled, the final `.` line."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # a bare CR or LF somewhere
        data = _LINE_ENDS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if b"\n." in data or data.startswith(b"."):
        data = _LEADING_DOT.sub(b"..", data)
    return data + b".\r\n"


async def _reset(smtp: aiosmtplib.SMTP, timeout: float) -> None:
    """End a refused transaction so the connection can carry the next one (or drop it)."""
    if not smtp.is_connected:
        return
    try:
        await smtp.rset(timeout=timeout)
    except Exception:  # noqa: BLE001 - a connection that cannot RSET is not reused
        smtp.close()


def _refused(code: int, text: str) -> tuple[Outcome, str]:
    return (Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED), _detail(code, text)


def _detail(code: int, text: str) -> str:
    """`451 4.3.0 try again`: the server's reply without addresses (they may name the recipient)."""
    text = " ".join(_ADDRESSES.sub("<address>", text).split())
    return f"{code} {text}"[:200]


def _describe(error: BaseException) -> str:
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _detail(error.code, error.message)
    text = " ".join(_ADDRESSES.sub("<address>", str(error)).split())
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


def _discard(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()
    return None


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    """The EHLO name, looked up once per process (socket.getfqdn can be slow)."""
    name = socket.getfqdn()
    return name if name.isascii() and name and " " not in name else "localhost"
