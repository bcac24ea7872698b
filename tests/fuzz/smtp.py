"""A hostile SMTP server on loopback, scripted by the input bytes, against `send_all`: each message gets one
outcome, in bounded time; none is `sent` without a 250 to its data, none goes out twice, none is corrupted.

Input: one byte of settings (messages, PIPELINING, connections), then two bytes per server step (greeting,
EHLO, each command, each message data): an action (`KINDS`) and its parameter. Missing bytes: valid replies.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re

from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all
from tests.fuzz import Target, mutate_bytes

TIMEOUT = 0.1  # the sender's timeout: loopback answers within a millisecond, so only a silent server hits it
KINDS = ("valid", "odd_code", "multiline", "malformed", "partial", "endless", "drip", "megabyte", "close",
         "silence", "two_replies", "bare_lf", "huge_multiline", "close_in_data")
ODD_CODES = (421, 450, 451, 452, 500, 502, 550, 552, 554, 251, 252, 220, 221, 354, 334, 250, 211)
MALFORMED = (b"2500 ok", b"25 ok", b"25O ok", b" 250 ok", b"+25 ok", b"-25 ok", b"2_5 ok", b"250ok", b"\xff\xfe ok",
             b"", b"ok", b"099 ok", b"650 ok", b"250-ok\r\n550 no", b"550-no\r\n250 ok", b"354-go\r\n250 ok",
             b"\x00250 ok", b"250\tok", b"25\r\n0 ok")
EXTRA = (b"250 again\r\n", b"354 go on\r\n", b"451 later\r\n", b"25", b"421 bye\r\n")  # a reply nobody asked for
_VALID = {b"EHLO": b"250-fuzz\r\n%s250 8BITMIME\r\n", b"HELO": b"250 fuzz\r\n", b"MAIL": b"250 2.1.0 ok\r\n",
          b"RCPT": b"250 2.1.5 ok\r\n", b"DATA": b"354 go ahead\r\n", b"RSET": b"250 2.0.0 ok\r\n",
          b"QUIT": b"221 2.0.0 bye\r\n", b"": b"220 fuzz ESMTP\r\n", b"data": b"250 2.0.0 queued\r\n"}
_RECIPIENT = re.compile(rb"X-Vialflow-Recipient: (\d+)")


@functools.lru_cache(maxsize=1)
def messages() -> tuple[tuple[int, str, str, bytes], ...]:
    from tests.test_mail_render import confirmation  # a test module: imported only when a target runs

    return tuple((number, "noreply@vialflow.example.fr", f"officine.{690000000 + number}@pharma.example.fr",
                  render(confirmation(recipient=f"{690000000 + number}",
                                      address=f"officine.{690000000 + number}@pharma.example.fr")))
                 for number in range(5))


class Hostile:
    """The server: one action of the script per step, in the order the steps come, on every connection."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 1
        settings = data[0] if data else 0
        self.count, self.pipelining, self.connections = 1 + settings % 5, settings // 5 % 2, 1 + settings // 10 % 2
        self.heard: list[bytes] = []  # everything read, every connection: each message's header counted there
        self.delivered: list[tuple[bytes, int | None]] = []  # whole message data with the code its reply meant
        self.extra = False  # a reply nobody asked for was sent: the order of replies no longer proves anything
        self.handlers: dict[asyncio.Task, asyncio.StreamWriter] = {}

    def _take(self, n: int) -> int:
        self.at += 1
        return self.data[self.at - 1] % n if self.at <= len(self.data) else 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handlers[asyncio.current_task()] = writer
        try:
            verb, in_data = b"", False
            while True:
                kind, param = KINDS[self._take(len(KINDS))], self._take(256)
                if in_data:
                    if kind == "close_in_data":
                        self.heard.append(await reader.read(50 * param))
                        return
                    try:
                        chunk = await reader.readuntil(b"\r\n.\r\n")
                    except asyncio.IncompleteReadError as error:
                        self.heard.append(error.partial)
                        return
                    self.heard.append(chunk)
                    verb = b"data"
                code = await self._act(writer, reader, _VALID.get(verb, b"500 5.5.1 what\r\n"), kind, param)
                if verb == b"data":
                    self.delivered.append((chunk, code))
                if kind in ("close", "silence", "endless", "close_in_data"):
                    return
                in_data = verb == b"DATA" and code is not None and code // 100 == 3
                line = b"" if in_data else await reader.readline()
                if not in_data and not line:
                    return
                self.heard.append(line)
                verb = line[:4].upper()
        except (ConnectionError, OSError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _act(self, writer, reader, valid: bytes, kind: str, param: int) -> int | None:
        """Write one answer; the code it means to a careful client, None when it means nothing."""
        if valid.startswith(b"250-fuzz"):
            valid = valid % (b"250-PIPELINING\r\n" if self.pipelining else b"")
        code = int(valid[:3])
        reply, meant = valid, code
        if kind == "odd_code":
            meant = ODD_CODES[param % len(ODD_CODES)]
            reply = b"%d 4.0.0 odd\r\n" % meant
        elif kind == "multiline":
            reply = b"%d-first\r\n%d-second\r\n%s" % (code, code, valid)
        elif kind in ("malformed", "megabyte", "huge_multiline"):
            reply, meant = {"malformed": MALFORMED[param % len(MALFORMED)] + b"\r\n",
                            "megabyte": b"250 "[:4 * (param % 2)] + b"x" * (1 << 20) + b"\r\n",
                            "huge_multiline": b"%d-%s\r\n" % (code, b"y" * 998) * 100 + valid}[kind], None
        elif kind == "partial":
            reply, meant = valid[:1 + param % (len(valid) - 1)], None
        elif kind == "two_replies":
            reply, self.extra = valid + EXTRA[param % len(EXTRA)], True
        elif kind == "bare_lf":
            reply = valid.replace(b"\r\n", b"\n")
        elif kind in ("close", "close_in_data"):
            reply = valid[:param % (len(valid) + 1)]
            meant = code if reply == valid else None
        elif kind == "silence":
            while await reader.read(65536):
                pass
            return None
        elif kind == "endless":
            for _ in range(400):  # 2 s at most: the client should have given up long before
                writer.write(b"%d-more\r\n" % code)
                await writer.drain()
                await asyncio.sleep(0.005)
            return None
        if kind == "drip":
            for byte in reply:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.001)
        else:
            writer.write(reply)
            await writer.drain()
        if kind in ("close", "close_in_data"):
            writer.close()
        return meant


async def converse(data: bytes) -> tuple[Hostile, tuple, dict[int, tuple[Outcome, str]], dict[int, int]]:
    """The server scripted by `data`, the messages sent to it, their outcomes and the callbacks per message."""
    server = Hostile(data)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, limit=1 << 21)
    batch = messages()[:server.count]
    calls: dict[int, int] = {}
    bound = (12 * len(batch) + 2) * TIMEOUT + 1  # per message: two attempts of connect, EHLO, HELO, send, RSET
    try:
        async with listener:
            try:
                results = await asyncio.wait_for(send_all(
                    SmtpTarget("127.0.0.1", listener.sockets[0].getsockname()[1]), batch,
                    connections=server.connections, timeout=TIMEOUT,
                    on_result=lambda number, *_: calls.__setitem__(number, calls.get(number, 0) + 1)), bound)
            except TimeoutError:
                raise AssertionError(f"send_all still running after {bound:.1f} s") from None
            except Exception as error:
                raise AssertionError(f"an exception escaped send_all: {error!r}") from error
            done, left = await asyncio.wait(server.handlers, timeout=1) if server.handlers else ((), ())
            assert not left, f"{len(left)} connection(s) left open by the sender"
    finally:
        for writer in server.handlers.values():  # its handler then reads the end of input and returns
            writer.close()
    return server, batch, results, calls


def _verdict(server: Hostile, batch, results, calls) -> None:
    numbers = {number for number, *_ in batch}
    assert set(results) == numbers and all(calls.get(n) == 1 for n in numbers), f"outcomes {results}, calls {calls}"
    assert all(isinstance(outcome, Outcome) for outcome, _ in results.values()), results
    heard = b"".join(server.heard)
    for number, *_ in batch:
        assert heard.count(b"X-Vialflow-Recipient: %d\r\n" % (690000000 + number)) <= 1, f"{number} went out twice"
    replies = {int(found.group(1)) - 690000000: code for chunk, code in server.delivered
               if (found := _RECIPIENT.search(chunk))}
    if server.extra:
        return  # the server answered commands not yet sent: no client can tell which reply meant what
    for chunk, _ in server.delivered:
        assert any(chunk == data + b".\r\n" for *_, data in batch), f"a corrupted message was delivered: {chunk[:200]!r}"
    for number, (outcome, detail) in results.items():
        code = replies.get(number)
        assert outcome != Outcome.SENT or code == 250, f"{number} reported sent, the server answered {code}: {detail}"
        assert outcome != Outcome.RETRY or number not in replies or code is not None and code // 100 == 4, \
            f"{number} to retry, yet the server holds it (answered {code}): {detail}"
        assert outcome != Outcome.FAILED or code != 250, f"{number} reported failed, the server queued it: {detail}"


def check(data: bytes) -> None:
    _verdict(*asyncio.run(converse(data)))


def seeds() -> list[bytes]:
    """Valid conversations, then each action at the DATA command and at the data, plain and pipelined."""
    out = [b"", bytes([4]), bytes([9]), bytes([19])]
    for kind in range(1, len(KINDS)):
        for settings in (2, 7):
            out.append(bytes([settings, 0, 0, 0, 0, 0, 0, 0, 0, kind, 3]))  # the DATA command
            out.append(bytes([settings, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, kind, 5]))  # the message data
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Byte mutations half the time; otherwise one step given a random action, or more steps appended."""
    if rng.random() < 0.5:
        return mutate_bytes(rng, data)
    data = bytearray(data or b"\x00")
    at = 1 + 2 * rng.randrange(12)
    data.extend(bytes(max(0, at + 2 - len(data))))
    data[at:at + 2] = bytes([rng.randrange(len(KINDS)), rng.randrange(256)])
    return bytes(data)


TARGETS = {"smtp_replies": Target(seeds=seeds, check=check, mutate=mutate)}
