"""One SMTP connection and one message over it: what the server answered, and whether the message may be
sent again.

RETRY only when the server cannot have accepted the message (a 4xx reply, or the connection lost before
the data went out); UNKNOWN when the data went out but no 250, 4xx or 5xx reply came back: never resent
blindly. A reply that breaks RFC 5321 ends the connection: what follows it cannot be trusted.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING

import aiosmtplib

if TYPE_CHECKING:
    from .smtp import SmtpTarget

_LINE_ENDS = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_ADDRESSES = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
# RFC 5321 4.2: three digits, 2 to 5 first, then a space and text, a hyphen (more lines follow) or the end.
_REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])(?:([ -])([^\r\n]*))?\r?\n")
_MAX_REPLY = 65536  # bytes: a reply (all its lines) this long is no server's honest answer
_ENVELOPE_REPLIES = (2, 2, 3)  # MAIL, RCPT, DATA


class Outcome(str, Enum):
    SENT = "sent"
    RETRY = "retry"  # the server did not take it: send again later
    FAILED = "failed"  # a permanent refusal (5xx)
    UNKNOWN = "unknown"  # the data went out, no final reply: never resend blindly


class Dropped(Exception):
    """The connection was lost or timed out before the message data went out: safe to send again."""


class Connection(asyncio.Protocol):
    """One SMTP connection. aiosmtplib opens it (greeting, EHLO, STARTTLS, login); then this protocol
    takes the transport over to carry the transactions, so that where the server offers PIPELINING
    (RFC 2920) a message's MAIL, RCPT and DATA leave in one write and their replies come back
    together: half the system calls per message, which aiosmtplib does not offer."""

    def __init__(self, transport: asyncio.Transport, *, pipelining: bool, eight_bit: bool) -> None:
        self.pipelining, self.eight_bit = pipelining, eight_bit
        self._transport = transport
        self._buffer = bytearray()
        self._lines: list[str] = []  # the lines read so far of a reply that spans several
        self._code, self._size = 0, 0  # that reply's code and length so far
        self._awaited = 0  # replies due to commands written and not yet read: any other byte is a fault
        self._replies: collections.deque[tuple[int, str]] = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._lost: BaseException | None = None
        transport.set_protocol(self)

    @classmethod
    async def open(cls, target: SmtpTarget, timeout: float) -> "Connection":
        smtp = aiosmtplib.SMTP(hostname=target.host, port=target.port, timeout=timeout,
                               use_tls=target.tls == "tls", start_tls=target.tls == "starttls",
                               validate_certs=True, username=target.username, password=target.password,
                               local_hostname=_local_hostname())
        await smtp.connect()
        try:
            if smtp.is_ehlo_or_helo_needed:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
            if smtp.transport is None:
                raise ConnectionResetError("the server closed the connection after its greeting")
            return cls(smtp.transport, pipelining=smtp.supports_extension("pipelining"),
                       eight_bit=smtp.supports_extension("8bitmime"))
        except BaseException:  # a reply too long, a timeout, a cancel: the connection is not left open
            smtp.close()
            raise

    @property
    def is_open(self) -> bool:
        return self._lost is None and not self._transport.is_closing()

    def write(self, data: bytes, *, replies: int) -> None:
        """Send `data`, due to bring `replies` replies back."""
        if not self.is_open:
            raise ConnectionResetError("the connection is closed")
        self._awaited += replies
        self._transport.write(data)

    async def reply(self) -> tuple[int, str]:
        """The next reply: (code, text), its lines joined by newlines."""
        while not self._replies:
            if self._lost is not None:
                raise ConnectionResetError(str(self._lost) or "the connection was lost")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    async def commands(self, lines: tuple[bytes, ...], expected: tuple[int, ...]) -> list[tuple[int, str]]:
        """Send command lines, each expecting a reply of the given first digit; the replies read.
        Pipelined: all lines leave at once and every reply is read. Otherwise one line at a time,
        stopping after the first unexpected reply."""
        replies: list[tuple[int, str]] = []
        if self.pipelining:
            self.write(b"".join(lines), replies=len(lines))
            for _ in lines:
                try:
                    replies.append(await self.reply())
                except ConnectionError:
                    if _unexpected(replies, expected) is None:
                        raise
                    break  # a server that refused, then hung up (421): its refusal is the answer
            return replies
        for line in lines:
            self.write(line, replies=1)
            replies.append(await self.reply())
            if _unexpected(replies, expected) is not None:
                break
        return replies

    async def quit(self, timeout: float) -> None:
        if self.is_open:
            try:
                async with asyncio.timeout(timeout):
                    self.write(b"QUIT\r\n", replies=1)
                    await self.reply()
            except Exception:  # noqa: BLE001 - the messages are done; a failed QUIT changes nothing
                pass
        self.close()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (end := self._buffer.find(b"\n")) != -1:
                line = bytes(self._buffer[:end + 1])
                del self._buffer[:end + 1]
                self._read_line(line)
            if self._buffer and not self._awaited:
                raise ValueError("bytes after the last reply awaited")
            if self._size + len(self._buffer) > _MAX_REPLY:
                raise ValueError("reply too long")
        except ValueError as error:  # not an SMTP reply: this connection cannot be trusted any more
            self._lost = ConnectionResetError(f"malformed reply from the server ({error})")
            self._transport.close()
        self._wake()

    def _read_line(self, line: bytes) -> None:
        """One line of a reply; the reply queued at its last line ("250 ok"; "250-..." lines come before).
        A reply that no command asked for would be taken for the next command's: it is a fault, like a
        line that is not a reply line or a reply whose lines disagree on the code."""
        if not self._awaited:
            raise ValueError("a reply to no command")
        if (match := _REPLY_LINE.fullmatch(line)) is None:
            raise ValueError("not an SMTP reply line")
        code = int(match[1])
        if self._lines and code != self._code:
            raise ValueError("a reply whose lines have different codes")
        self._code, self._size = code, self._size + len(line)
        if self._size > _MAX_REPLY:
            raise ValueError("reply too long")
        self._lines.append((match[3] or b"").strip().decode("utf-8", "replace"))
        if match[2] != b"-":
            self._replies.append((code, "\n".join(self._lines)))
            self._lines, self._size, self._awaited = [], 0, self._awaited - 1

    def eof_received(self) -> bool:
        self._lost = ConnectionResetError("the server closed the connection")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._lost = exc or ConnectionResetError("the connection was closed")
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def transaction(connection: Connection, sender: str, recipient: str, data: bytes,
                       timeout: float) -> tuple[Outcome, str]:
    """MAIL, RCPT, DATA, then the message. A lost connection is known to be before the data (raised
    as Dropped: RETRY) or after it (UNKNOWN). One timer for the whole transaction."""
    try:
        sender_bytes, recipient_bytes = sender.encode("ascii"), recipient.encode("ascii")
    except UnicodeEncodeError:  # SMTPUTF8 is not used: no such address here
        return Outcome.FAILED, "invalid envelope address (not ASCII)"
    if _CONTROL.search(sender_bytes) or _CONTROL.search(recipient_bytes):
        return Outcome.FAILED, "invalid envelope address (a control character)"
    body = b" BODY=8BITMIME" if connection.eight_bit and not data.isascii() else b""
    payload = _payload(data)
    data_sent = False
    try:
        async with asyncio.timeout(timeout):
            replies = await connection.commands(
                (b"MAIL FROM:<%s>%s\r\n" % (sender_bytes, body), b"RCPT TO:<%s>\r\n" % recipient_bytes, b"DATA\r\n"),
                _ENVELOPE_REPLIES)  # 2xx (251, 252 too), then 354
            refused = _unexpected(replies, _ENVELOPE_REPLIES)
            if refused is not None and refused[0] // 100 not in (4, 5):
                # neither yes nor no (a 250 to DATA, a 354 to RCPT): the replies no longer match the commands
                raise ConnectionResetError(f"a reply out of step with the commands: {_detail(*refused)}")
            if refused is None:
                if not connection.is_open:  # a fault found in the replies already: nothing went out
                    raise ConnectionResetError("the connection was closed before the message data")
                data_sent = True  # from here on the server may hold the whole message
                connection.write(payload, replies=1)
                code, text = await connection.reply()
    except (ConnectionError, OSError, TimeoutError) as error:
        connection.close()
        if not data_sent:
            raise Dropped(describe(error)) from error
        return Outcome.UNKNOWN, f"no reply after the message data: {describe(error)}"
    if refused is not None:
        if replies[-1][0] // 100 == 3:  # a pipelined DATA accepted after a refusal: the server awaits data
            connection.close()
        else:
            await _reset(connection, timeout)
        return _refused(*refused)
    if code == 250:  # RFC 5321 4.3.2: the one reply by which a server takes a message
        return Outcome.SENT, _detail(code, text)
    if code // 100 in (4, 5):
        if code == 421:
            connection.close()
        return _refused(code, text)
    connection.close()  # any other reply: out of step with the commands, and it may hold the message
    return Outcome.UNKNOWN, f"an unexpected reply after the message data: {_detail(code, text)}"


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


async def _reset(connection: Connection, timeout: float) -> None:
    """End a refused transaction so the connection can carry the next one (or drop it)."""
    try:
        async with asyncio.timeout(timeout):
            connection.write(b"RSET\r\n", replies=1)
            if (await connection.reply())[0] // 100 == 2:
                return
    except Exception:  # noqa: BLE001 - a connection that cannot RSET is not reused
        pass
    connection.close()


def _unexpected(replies: list[tuple[int, str]], expected: tuple[int, ...]) -> tuple[int, str] | None:
    return next((reply for reply, digit in zip(replies, expected) if reply[0] // 100 != digit), None)


def _refused(code: int, text: str) -> tuple[Outcome, str]:
    return (Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED), _detail(code, text)


def without_addresses(text: str) -> str:
    """The text with every email address replaced by `<address>` (SMTP replies and log lines)."""
    return _ADDRESSES.sub("<address>", text)


def _detail(code: int, text: str) -> str:
    """`451 4.3.0 try again`: the server's reply without addresses (they may name the recipient)."""
    text = " ".join(without_addresses(text).split())
    return f"{code} {text}"[:200]


def describe(error: BaseException) -> str:
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _detail(error.code, error.message)
    text = " ".join(without_addresses(str(error)).split())
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    """The EHLO name, looked up once per process (socket.getfqdn can be slow)."""
    name = socket.getfqdn()
    return name if name.isascii() and name and " " not in name else "localhost"
