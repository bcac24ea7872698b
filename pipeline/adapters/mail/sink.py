"""An SMTP server on loopback that keeps every message it accepts: the embedded default and the tests."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from pathlib import Path
from typing import Callable, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from pipeline.adapters.files.safety import inside

DISCONNECT = "disconnect"
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs envelope addresses at DEBUG
_HEADER = re.compile(rb"(?im)^X-Vialflow-(Session|Run|Recipient):[ \t]*([^\r\n]*)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STUFFED_DOT = re.compile(rb"(?m)^\.")  # RFC 5321 4.5.2: the receiver drops the first dot of such a line


class Received(NamedTuple):
    """One accepted message: its envelope and its bytes exactly as received."""
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class MailSink:
    """Accepts mail on 127.0.0.1 (a free port) in a thread of its own, writes each accepted message to
    `folder/<session>-r<run>-<recipient>.eml` (never overwriting) and keeps it in `received`.

    `script(message bytes)` decides per message: None accepts (250), an SMTP reply such as
    "451 4.3.0 try again" refuses it at the end of DATA, "disconnect" drops the connection unanswered.
    """

    def __init__(self, folder: Path | None, *, script: Callable[[bytes], str | None] | None = None,
                 keep: bool = True) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.script = script
        self.keep = keep
        self.received: list[Received] = []
        self.accepted = 0
        self.peers: set[tuple[str, int]] = set()  # the client ends of the connections that delivered
        self._lock = threading.Lock()
        self._controller: LoopbackController | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the mail sink is not started")
        return self._controller.port

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "MailSink":
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = LoopbackController(_Handler(self), hostname="127.0.0.1", port=0,
                                               server_hostname="vialflow-sink", ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "MailSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, peer, mail_from: str, rcpt_tos: tuple[str, ...], content: bytes) -> None:
        with self._lock:
            self.accepted += 1
            self.peers.add(tuple(peer))
            if self.keep:
                self.received.append(Received(mail_from, rcpt_tos, content))
            if self.folder is not None:
                save_message(self.folder, content)


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname: str, responses: list[str]) -> list[str]:
        return advertise_pipelining(session, hostname, responses)

    async def handle_DATA(self, server, session, envelope) -> str:
        content: bytes = envelope.content
        verdict = self.sink.script(content) if self.sink.script is not None else None
        if verdict == DISCONNECT:
            server.transport.close()
            await asyncio.get_running_loop().create_future()  # cancelled when the connection is lost
        if verdict:
            return verdict
        self.sink._accept(session.peer, envelope.mail_from, tuple(envelope.rcpt_tos), content)
        return "250 2.0.0 Ok: queued"


def advertise_pipelining(session, hostname: str, responses: list[str]) -> list[str]:
    """EHLO's reply with PIPELINING (RFC 2920), as real servers give it: aiosmtpd reads commands in
    order from its stream, so pipelined ones are handled like any other."""
    session.host_name = hostname
    return [*responses[:-1], "250-PIPELINING", responses[-1]]


class LoopbackController(Controller):
    """aiosmtpd's Controller on port 0 (the port the system chose is read back before its first use),
    serving with _BulkDataSMTP."""

    def factory(self):
        return _BulkDataSMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        return self._bind()

    async def _bind(self):
        server = await super()._create_server()
        self.port = server.sockets[0].getsockname()[1]
        return server


class _BulkDataSMTP(SMTP):
    """aiosmtpd's server, reading the message data in large chunks instead of one await per line (most
    of its cost per message), so that the sink keeps up with the sender. Data is always bytes."""

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        if arg:
            return await self.push("501 Syntax: DATA")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = bytearray(b"\r\n")  # so that a lone "." first ends an empty message like any other
        limit, dropped, searched = self.data_size_limit or 1 << 62, False, 0
        while (end := data.find(b"\r\n.\r\n", searched)) == -1:
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                return  # the connection is closing; aiosmtpd cancels this coroutine
            if len(data) + len(chunk) > limit + 2:
                del data[:-4]  # too much: keep reading to the end, then refuse
                dropped = True
            searched = max(0, len(data) - 4)
            data += chunk
        if end + 5 < len(data):  # a client that did not wait for our reply: its next command stays
            self._reader.feed_data(bytes(data[end + 5:]))
        if dropped:
            self._set_post_data_state()
            return await self.push("552 Error: Too much mail data")
        content = _STUFFED_DOT.sub(b"", bytes(data[2:end + 2]))
        self.envelope.content = self.envelope.original_content = content
        status = await self.event_handler.handle_DATA(self, self.session, self.envelope)
        self._set_post_data_state()  # aiosmtpd's own reset after DATA
        await self.push(status or "250 OK")


def _file_stem(content: bytes) -> str:
    head = content.split(b"\r\n\r\n", 1)[0]
    found = {name.lower(): value.decode("ascii", "replace").strip() for name, value in _HEADER.findall(head)}
    if not found:
        return "message"
    session = found.get(b"session", "session")
    run = found.get(b"run", "0")
    recipient = found.get(b"recipient", "recipient")
    return "-".join(_UNSAFE.sub("_", part).strip("._")[:80] or "_" for part in (session, f"r{run}", recipient))


def _write_new(folder: Path, stem: str, content: bytes) -> Path:
    """Write to `stem.eml`, or `stem-2.eml`, `stem-3.eml`… when taken: a message never replaces another."""
    number = 1
    while True:
        path = inside(folder, f"{stem}.eml" if number == 1 else f"{stem}-{number}.eml")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            number += 1
            continue
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        return path


def save_message(folder: Path, content: bytes, *, overwrite: bool = False) -> Path:
    """Keep a message as `<session>-r<run>-<recipient>.eml` in `folder`; with `overwrite`, a copy
    of the same message replaces the earlier copy instead of standing beside it.

    The name comes from the message's own headers: `_file_stem` keeps only safe characters, and
    `inside` still refuses it (UnsafePath) should it reach out of `folder`, by a symlink for one."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _file_stem(content)
    if overwrite:
        path = inside(folder, f"{stem}.eml")
        path.write_bytes(content)
        return path
    return _write_new(folder, stem, content)


def main() -> None:
    """`python -m pipeline.adapters.mail.sink FOLDER`: a sink in a process of its own, so that it does not
    share an interpreter lock with the sender. Prints its port, stops when its input closes."""
    import sys

    with MailSink(Path(sys.argv[1]), keep=False) as sink:
        print(sink.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
