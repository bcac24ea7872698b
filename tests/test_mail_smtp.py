"""Sending confirmation emails (R9) to a real SMTP server on loopback: outcomes, retries, TLS, the sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult

from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.sink import LoopbackController, MailSink, advertise_pipelining, save_message
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all, send_all_sync
from tests.test_mail_render import confirmation

SENDER = "noreply@vialflow.example.fr"


def messages(count: int, *, start: int = 0) -> list[tuple[int, str, str, bytes]]:
    """`count` distinct rendered emails as (outbox id, envelope sender, envelope recipient, bytes)."""
    out = []
    for number in range(start, start + count):
        recipient = f"{690000000 + number}"
        address = f"officine.{recipient}@pharma.example.fr"
        out.append((number, SENDER, address, render(confirmation(recipient=recipient, address=address))))
    return out


def target(sink) -> SmtpTarget:
    return SmtpTarget.from_url(sink.url)


# -- the target URL ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("smtp://127.0.0.1:2525", SmtpTarget("127.0.0.1", 2525, "none", None, None)),
    ("smtp://mail.example.fr", SmtpTarget("mail.example.fr", 25, "none", None, None)),
    ("smtp://mail.example.fr:587?starttls=1", SmtpTarget("mail.example.fr", 587, "starttls", None, None)),
    ("smtp+starttls://u:p@mail.example.fr", SmtpTarget("mail.example.fr", 587, "starttls", "u", "p")),
    ("smtps://mail.example.fr", SmtpTarget("mail.example.fr", 465, "tls", None, None)),
    ("smtps://vialflow%40example.fr:p%3Ass@mail.example.fr:4650",
     SmtpTarget("mail.example.fr", 4650, "tls", "vialflow@example.fr", "p:ss")),
])
def test_smtp_url_gives_host_port_tls_and_login(url, expected):
    assert SmtpTarget.from_url(url) == expected


@pytest.mark.parametrize("url", ["http://mail.example.fr", "smtp://", "smtp://host:notaport", "mail.example.fr"])
def test_a_bad_smtp_url_is_refused(url):
    with pytest.raises(ValueError):
        SmtpTarget.from_url(url)


def test_the_password_is_not_in_the_target_repr():
    assert "secret" not in repr(SmtpTarget.from_url("smtps://user:secret@mail.example.fr"))


# -- outcomes against the loopback sink -------------------------------------------------------------------------

def test_r9_messages_arrive_byte_identical_and_are_written_as_eml(tmp_path):
    batch = messages(3)
    with MailSink(tmp_path) as sink:
        outcomes = send_all_sync(target(sink), batch, connections=2)
    assert {number: outcome for number, (outcome, _) in outcomes.items()} == {0: Outcome.SENT, 1: Outcome.SENT,
                                                                               2: Outcome.SENT}
    assert all(detail.startswith("250") for _, detail in outcomes.values())
    received = {item.rcpt_tos: item for item in sink.received}
    for _, sender, recipient, data in batch:
        assert received[(recipient,)].content == data and received[(recipient,)].mail_from == sender
        assert (tmp_path / f"2021-06-14-r1-{recipient.split('.')[1].split('@')[0]}.eml").read_bytes() == data
    assert len(list(tmp_path.iterdir())) == 3


def test_r9_a_message_received_twice_never_overwrites_the_first_file(tmp_path):
    batch = messages(1)
    with MailSink(tmp_path) as sink:
        send_all_sync(target(sink), batch)
        send_all_sync(target(sink), batch)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2021-06-14-r1-690000000-2.eml",
                                                                "2021-06-14-r1-690000000.eml"]


def test_a_saved_copy_is_named_from_its_headers_and_replaced_only_when_asked(tmp_path):
    [(_, _, _, data)] = messages(1)
    assert save_message(tmp_path, data).name == "2021-06-14-r1-690000000.eml"
    assert save_message(tmp_path, data).name == "2021-06-14-r1-690000000-2.eml"
    assert save_message(tmp_path, data, overwrite=True).name == "2021-06-14-r1-690000000.eml"
    odd = b"X-Vialflow-Session: a/../b\r\nX-Vialflow-Recipient: x\r\n\r\nbody"
    assert save_message(tmp_path, odd).name == "a_.._b-r0-x.eml"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "2021-06-14-r1-690000000-2.eml", "2021-06-14-r1-690000000.eml", "a_.._b-r0-x.eml"]


def test_r9_temporary_refusal_is_retry_until_the_server_accepts():
    replies = iter(["451 4.3.0 try again"] * 3)
    batch = messages(2)
    with MailSink(None, script=lambda data: next(replies, None) if b"690000001" in data else None) as sink:
        outcomes = send_all_sync(target(sink), batch)
        assert outcomes[0] == (Outcome.SENT, outcomes[0][1]) and outcomes[1] == (Outcome.RETRY, "451 4.3.0 try again")
        seen = []
        for _ in range(3):  # the caller's retry loop: the failing ids only
            failing = [item for item in batch if outcomes.get(item[0], (None,))[0] == Outcome.RETRY]
            outcomes = send_all_sync(target(sink), failing)
            seen.append(outcomes[1][0])
    assert seen == [Outcome.RETRY, Outcome.RETRY, Outcome.SENT]
    assert Counter(item.rcpt_tos[0] for item in sink.received) == {batch[0][2]: 1, batch[1][2]: 1}


def test_r9_permanent_refusal_is_failed_and_its_detail_names_no_address():
    batch = messages(2)
    script = {batch[1][3]: f"550 5.1.1 <{batch[1][2]}>: Recipient address rejected"}
    with MailSink(None, script=script.get) as sink:
        outcomes = send_all_sync(target(sink), batch)
    assert outcomes[1] == (Outcome.FAILED, "550 5.1.1 <address>: Recipient address rejected")
    assert outcomes[0][0] == Outcome.SENT and len(sink.received) == 1


def test_r9_connection_lost_after_the_data_is_unknown_and_the_others_still_go():
    batch = messages(6)
    with MailSink(None, script=lambda data: "disconnect" if data == batch[2][3] else None) as sink:
        outcomes = send_all_sync(target(sink), batch, connections=1)
    assert outcomes[2][0] == Outcome.UNKNOWN and "@" not in outcomes[2][1]
    assert [outcomes[number][0] for number in (0, 1, 3, 4, 5)] == [Outcome.SENT] * 5
    assert sorted(item.rcpt_tos[0] for item in sink.received) == sorted(item[2] for item in batch if item[0] != 2)


def test_r9_many_messages_over_several_connections_all_arrive_once():
    batch = messages(120)
    with MailSink(None) as sink:
        outcomes = send_all_sync(target(sink), batch, connections=6)
    assert Counter(outcome for outcome, _ in outcomes.values()) == {Outcome.SENT: 120}
    ids = Counter(email.message_from_bytes(item.content)["Message-ID"] for item in sink.received)
    assert len(ids) == 120 and set(ids.values()) == {1}
    assert len(sink.peers) == 6


def test_r9_messages_rendered_on_demand_by_a_generator_all_arrive_once():
    rendered = []

    def lazily():
        for number in range(40):
            rendered.append(number)
            yield messages(1, start=number)[0]

    with MailSink(None) as sink:
        outcomes = send_all_sync(target(sink), lazily(), connections=4)
    assert rendered == list(range(40)) and {outcome for outcome, _ in outcomes.values()} == {Outcome.SENT}
    assert len(sink.received) == 40 and len(sink.peers) == 4


def test_fewer_messages_than_connections_open_only_what_they_need():
    with MailSink(None) as sink:
        outcomes = send_all_sync(target(sink), messages(2), connections=8)
        assert send_all_sync(target(sink), [], connections=8) == {}
    assert len(outcomes) == 2 and len(sink.peers) <= 2


def test_header_injection_through_the_wire_gives_one_recipient_and_no_extra_header():
    evil = "Pharmacie X\r\nBcc: evil@example.org"
    data = render(confirmation(name=evil))
    with MailSink(None) as sink:
        outcomes = send_all_sync(target(sink), [(1, SENDER, "officine.690012345@pharma.example.fr", data)])
    [item] = sink.received
    assert outcomes[1][0] == Outcome.SENT and item.rcpt_tos == ("officine.690012345@pharma.example.fr",)
    message = email.message_from_bytes(item.content, policy=email.policy.default)
    assert message["Bcc"] is None and [a.addr_spec for a in message["To"].addresses] == [
        "officine.690012345@pharma.example.fr"]


def test_an_envelope_address_with_a_line_break_fails_without_sending_anything():
    [good] = messages(1)
    bad = (7, SENDER, "victim@example.org\r\nRCPT TO:<evil@example.org>", good[3])
    with MailSink(None) as sink:
        outcomes = send_all_sync(target(sink), [bad, good])
    assert outcomes[7][0] == Outcome.FAILED and "@" not in outcomes[7][1]
    assert outcomes[0][0] == Outcome.SENT
    assert [item.rcpt_tos for item in sink.received] == [(good[2],)]


def test_a_server_that_cannot_be_reached_leaves_every_message_to_retry():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", port, "none", None, None), messages(3), connections=2)
    assert {outcome for outcome, _ in outcomes.values()} == {Outcome.RETRY} and len(outcomes) == 3
    assert all("@" not in detail for _, detail in outcomes.values())


def test_bare_line_feeds_and_leading_dots_travel_as_smtp_requires():
    data = b"Subject: x\nX-Vialflow-Session: s\n\n.leading dot\nend"
    with MailSink(None) as sink:
        assert send_all_sync(target(sink), [(1, SENDER, "a@example.fr", data)])[1][0] == Outcome.SENT
    assert sink.received[0].content == b"Subject: x\r\nX-Vialflow-Session: s\r\n\r\n.leading dot\r\nend\r\n"


def smtp_session(port: int, payload: bytes) -> bytes:
    """A raw SMTP conversation: the server's replies to `payload`, sent in one piece after the greeting."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        replies = client.recv(1024)
        client.sendall(payload)
        while not replies.rstrip().endswith(b"221 Bye"):
            chunk = client.recv(65536)
            if not chunk:
                break
            replies += chunk
    return replies


def test_the_sink_reads_empty_and_one_line_messages_and_commands_sent_after_the_final_dot(tmp_path):
    envelope = b"EHLO t\r\nMAIL FROM:<a@example.fr>\r\nRCPT TO:<b@example.fr>\r\nDATA\r\n"
    with MailSink(tmp_path) as sink:
        replies = smtp_session(sink.port, envelope + b".\r\n" + envelope + b"x: y\r\n.\r\n" + envelope
                               + b"..a\r\n.b\r\n..\r\n.\r\nQUIT\r\n")
    assert replies.count(b"250 2.0.0 Ok: queued") == 3 and replies.rstrip().endswith(b"221 Bye")
    assert [item.content for item in sink.received] == [b"", b"x: y\r\n", b".a\r\nb\r\n.\r\n"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["message-2.eml", "message-3.eml", "message.eml"]


def test_the_sink_refuses_a_message_over_its_size_limit():
    handler = Scripted()
    controller = scripted(handler, data_size_limit=1000)
    try:
        replies = smtp_session(controller.port, b"EHLO t\r\nMAIL FROM:<a@example.fr>\r\nRCPT TO:<b@example.fr>\r\n"
                               b"DATA\r\n" + b"x" * 70 + b"\r\n" * 1 + (b"y" * 70 + b"\r\n") * 100 + b".\r\nQUIT\r\n")
    finally:
        controller.stop()
    assert b"552 Error: Too much mail data" in replies and handler.delivered == []


def test_addresses_never_reach_the_logs(caplog):
    batch = messages(3)
    with caplog.at_level(logging.DEBUG, logger="pipeline.adapters.mail"):
        with MailSink(None, script=lambda data: "550 5.1.1 <x@example.org> unknown" if data == batch[0][3] else None) \
                as sink:
            send_all_sync(target(sink), batch)
        send_all_sync(SmtpTarget("127.0.0.1", 9, "none", None, None), batch)
    records = [record for record in caplog.records if record.name.startswith("pipeline.adapters.mail")]
    assert records and all("@" not in record.getMessage() for record in records)


# -- phases other than the end of DATA, with a scripted aiosmtpd server ---------------------------------------------

class Scripted:
    """An aiosmtpd handler that drops the connection at RCPT, refuses MAIL with 421, or never answers DATA."""

    def __init__(self, *, drop_rcpt: str = "", busy_mail: bool = False, silent_data: bool = False,
                 pipelining: bool = False, refuse_rcpt: bool = False):
        self.drop_rcpt, self.busy_mail, self.silent_data = drop_rcpt, busy_mail, silent_data
        self.pipelining, self.refuse_rcpt = pipelining, refuse_rcpt
        self.delivered: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.pipelining:
            return advertise_pipelining(session, hostname, responses)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.busy_mail:
            return "421 4.3.2 service busy, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        if address == self.drop_rcpt:
            server.transport.close()
            await asyncio.get_running_loop().create_future()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.silent_data:
            await asyncio.sleep(30)
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


def scripted(handler, **options) -> LoopbackController:
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0, server_hostname="scripted", **options)
    controller.start()
    return controller


PIPELINING = pytest.mark.parametrize("pipelining", [False, True], ids=["one-command-at-a-time", "pipelined"])


@PIPELINING
def test_a_connection_dropped_before_the_data_is_retry_and_the_next_message_goes(pipelining):
    batch = messages(3)
    handler = Scripted(drop_rcpt=batch[1][2], pipelining=pipelining)
    controller = scripted(handler)
    try:
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", controller.port, "none", None, None), batch, connections=1)
    finally:
        controller.stop()
    assert [outcomes[number][0] for number in range(3)] == [Outcome.SENT, Outcome.RETRY, Outcome.SENT]
    assert handler.delivered == [batch[0][2], batch[2][2]]


@PIPELINING
def test_a_421_to_mail_is_retry(pipelining):
    controller = scripted(Scripted(busy_mail=True, pipelining=pipelining))
    try:
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", controller.port, "none", None, None), messages(2))
    finally:
        controller.stop()
    assert {outcome for outcome, _ in outcomes.values()} == {Outcome.RETRY}
    assert all(detail.startswith("421 4.3.2") for _, detail in outcomes.values())


@PIPELINING
def test_a_refused_recipient_is_failed_nothing_is_sent_and_the_connection_carries_the_next(pipelining):
    handler = Scripted(refuse_rcpt=True, pipelining=pipelining)
    controller = scripted(handler)
    try:
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", controller.port, "none", None, None), messages(3),
                                 connections=1)
    finally:
        controller.stop()
    assert {outcome for outcome, _ in outcomes.values()} == {Outcome.FAILED}
    assert all(detail.startswith("550 5.1.1") for _, detail in outcomes.values())
    assert handler.delivered == []


def test_pipelined_commands_leave_in_one_write_and_replies_arriving_together_are_each_read():
    """RFC 2920 on the wire: a bare server that records what each read brings and answers MAIL, RCPT and
    DATA in one packet, the final reply on two lines."""
    reads: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def serve():
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"220 bare ESMTP\r\n")
                assert connection.recv(4096).startswith(b"EHLO ")
                connection.sendall(b"250-bare\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                reads.append(connection.recv(4096))
                connection.sendall(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    data += connection.recv(65536)
                connection.sendall(b"250-2.0.0 queued\r\n250 2.0.0 as 42\r\n")
                reads.append(connection.recv(4096))
                connection.sendall(b"221 bye\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", server.getsockname()[1], "none", None, None), messages(1))
        thread.join(timeout=10)
    assert outcomes[0] == (Outcome.SENT, "250 2.0.0 queued 2.0.0 as 42")
    assert reads[0].startswith(b"MAIL FROM:<") and reads[0].endswith(b">\r\nDATA\r\n") and b"\r\nRCPT TO:<" in reads[0]
    assert reads[1] == b"QUIT\r\n"


@PIPELINING
def test_no_reply_after_the_data_within_the_timeout_is_unknown(pipelining):
    controller = scripted(Scripted(silent_data=True, pipelining=pipelining))
    try:
        outcomes = send_all_sync(SmtpTarget("127.0.0.1", controller.port, "none", None, None), messages(1),
                                 timeout=1)
    finally:
        controller.stop()
    assert outcomes[0][0] == Outcome.UNKNOWN


# -- TLS: certificates verified, login when asked ----------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"vialflow" and auth_data.password == b"s3cret", handled=False)


def test_starttls_verifies_the_certificate_and_logs_in(certificate, monkeypatch):
    handler = Scripted()
    controller = scripted(handler, tls_context=server_context(certificate), require_starttls=True,
                          authenticator=authenticator, auth_require_tls=True, auth_required=True)
    try:
        url = f"smtp+starttls://vialflow:s3cret@127.0.0.1:{controller.port}"
        untrusted = send_all_sync(SmtpTarget.from_url(url), messages(1))
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the test certificate becomes trusted
        trusted = send_all_sync(SmtpTarget.from_url(url), messages(1))
        wrong_password = send_all_sync(SmtpTarget.from_url(url.replace("s3cret", "nope")), messages(1))
    finally:
        controller.stop()
    assert untrusted[0][0] == Outcome.RETRY and "CERTIFICATE_VERIFY_FAILED" in untrusted[0][1]
    assert trusted[0][0] == Outcome.SENT
    assert wrong_password[0][0] == Outcome.RETRY and "535" in wrong_password[0][1]
    assert handler.delivered == ["officine.690000000@pharma.example.fr"]


def test_implicit_tls_verifies_the_certificate(certificate, monkeypatch):
    handler = Scripted()
    controller = scripted(handler, ssl_context=server_context(certificate))
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        outcomes = send_all_sync(SmtpTarget.from_url(f"smtps://127.0.0.1:{controller.port}"), messages(2))
    finally:
        controller.stop()
    assert {outcome for outcome, _ in outcomes.values()} == {Outcome.SENT} and len(handler.delivered) == 2


def test_send_all_runs_inside_an_existing_event_loop():
    async def main(url):
        return await send_all(SmtpTarget.from_url(url), messages(2), connections=2)

    with MailSink(None) as sink:
        outcomes = asyncio.run(main(sink.url))
    assert {outcome for outcome, _ in outcomes.values()} == {Outcome.SENT}
