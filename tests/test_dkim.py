"""DKIM: signed confirmations verify against the selector's DNS record, and stop verifying when a
signed header is changed; `vialflow run` with a key writes verifiable .eml files."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dkim
import nacl.signing
import pytest

from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.signing import DkimKeyError, Signer
from pipeline.bootstrap import signer as signer_from
from pipeline.settings import Settings

from .conftest import FIXTURE
from .test_mail_render import confirmation, doctor_confirmation

SELECTOR, DOMAIN = "juin2021", "vialflow.example.fr"


def rsa_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh RSA-2048 key (PKCS#8 PEM, as OpenSSL 3 writes it) and its DNS TXT record."""
    key = folder / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def ed25519_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh Ed25519 key in PKCS#8 PEM and its DNS TXT record (RFC 8463: the raw public key)."""
    signing = nacl.signing.SigningKey.generate()
    der = bytes.fromhex("302e020100300506032b657004220420") + bytes(signing)
    key = folder / "ed25519.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END PRIVATE KEY-----\n")
    return key, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(signing.verify_key))


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def key(request, tmp_path_factory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp(request.param)
    return rsa_key(folder) if request.param == "rsa" else ed25519_key(folder)


def dns(record: bytes):
    """A stub resolver that answers the selector's TXT record, and nothing else."""
    def answer(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None
    return answer


def named(message: bytes) -> Counter:
    """How often the signature's h= names each header."""
    field = re.search(rb"\bh=([^;]+);", message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")).group(1)
    return Counter(name.strip().decode() for name in field.split(b":"))


def signed_headers(message: bytes) -> set[str]:
    return set(named(message))


def add_header(message: bytes, header: str, where: str) -> bytes:
    """The message with one more header: on top (before the signature) or last, just above the body."""
    if where == "top":
        return header.encode() + b"\r\n" + message
    head, body = message.split(b"\r\n\r\n", 1)
    return head + b"\r\n" + header.encode() + b"\r\n\r\n" + body


def test_a_signed_confirmation_verifies_against_the_selectors_dns_record(key):
    path, record = key
    signer = Signer.from_file(path, SELECTOR, DOMAIN)
    for letter in (confirmation(), doctor_confirmation(replaces="<2021-06-14.0.x@vialflow>")):
        message = signer(render(letter))
        assert message.startswith(b"DKIM-Signature: ")
        assert dkim.verify(message, dnsfunc=dns(record))
        assert {"from", "to", "subject", "message-id", "x-vialflow-session", "x-vialflow-run",
                "x-vialflow-recipient"} <= signed_headers(message)


def test_the_date_header_is_signed_when_the_message_has_one(key):
    import datetime as dt

    path, record = key
    message = Signer.from_file(path, SELECTOR, DOMAIN)(
        render(confirmation(date=dt.datetime(2021, 6, 18, 9, tzinfo=dt.timezone.utc))))
    assert "date" in signed_headers(message) and dkim.verify(message, dnsfunc=dns(record))


@pytest.mark.parametrize("header, value", [("Subject", "Subject: Vos vaccins"), ("To", "To: autre@example.fr"),
                                           ("X-Vialflow-Run", "X-Vialflow-Run: 2"),
                                           ("X-Vialflow-Recipient", "X-Vialflow-Recipient: 690099999"),
                                           ("Message-ID", "Message-ID: <forged@vialflow>")])
def test_changing_a_signed_header_breaks_the_signature(key, header, value):
    path, record = key
    message = Signer.from_file(path, SELECTOR, DOMAIN)(render(confirmation()))
    forged, count = re.subn(rb"(?m)^" + header.encode() + rb":[^\r\n]*(\r\n[ \t][^\r\n]*)*", value.encode(), message,
                            count=1)
    assert count == 1 and forged != message
    assert not dkim.verify(forged, dnsfunc=dns(record))


def test_each_header_a_reader_trusts_is_named_once_more_than_it_appears(key):
    import datetime as dt

    path, record = key
    letter = doctor_confirmation(replaces="<2021-06-14.1.x@vialflow>",
                                 date=dt.datetime(2021, 6, 18, 9, tzinfo=dt.timezone.utc))
    message = Signer.from_file(path, SELECTOR, DOMAIN)(render(letter))
    head = message.split(b"\r\n\r\n", 1)[0].lower()
    times = named(message)
    for name in ("from", "to", "cc", "reply-to", "subject", "date", "message-id", "supersedes", "references",
                 "mime-version", "content-type", "x-vialflow-session", "x-vialflow-run", "x-vialflow-recipient"):
        assert times[name] == len(re.findall(rb"(?m)^" + name.encode() + rb":", head)) + 1, name
    assert times["cc"] == times["reply-to"] == 1 and times["subject"] == 2
    assert dkim.verify(message, dnsfunc=dns(record))


@pytest.mark.parametrize("where", ["top", "last"])
@pytest.mark.parametrize("header", ["Reply-To: escroc@example.org", "Subject: Vos vaccins sont annulés",
                                    "From: Vaccination <ne-pas-repondre@vialflow.example.fr>", "To: autre@example.fr",
                                    "Cc: autre@example.fr", "Date: Fri, 18 Jun 2021 09:00:00 +0200",
                                    "Message-ID: <autre@vialflow.example.fr>", "MIME-Version: 1.0",
                                    "Content-Type: text/plain", "X-Vialflow-Run: 2"])
def test_one_more_header_a_reader_trusts_breaks_the_signature(key, header, where):
    path, record = key
    message = Signer.from_file(path, SELECTOR, DOMAIN)(render(confirmation()))
    assert dkim.verify(message, dnsfunc=dns(record))
    assert not dkim.verify(add_header(message, header, where), dnsfunc=dns(record))


def test_a_header_nobody_signs_can_still_be_added_in_transit(key):
    path, record = key
    message = Signer.from_file(path, SELECTOR, DOMAIN)(render(confirmation()))
    assert dkim.verify(add_header(message, "Received: from relay.example.org by mx.example.fr", "top"),
                       dnsfunc=dns(record))


def test_changing_the_body_breaks_the_signature(key):
    path, record = key
    message = Signer.from_file(path, SELECTOR, DOMAIN)(render(confirmation()))
    assert not dkim.verify(message.replace(b"A-0004", b"A-0009", 1), dnsfunc=dns(record))


def test_without_a_key_there_is_no_signer_and_a_bad_key_is_one_clear_error(tmp_path):
    assert signer_from(Settings()) is None
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(DkimKeyError, match="no PEM private key"):
        Signer.from_file(bad, SELECTOR, DOMAIN)
    with pytest.raises(DkimKeyError, match="SELECTOR"):
        Signer.from_file(bad, "", DOMAIN)


def test_the_signer_never_shows_its_key(key):
    path, _ = key
    signer = Signer.from_file(path, SELECTOR, DOMAIN)
    assert base64.b64encode(path.read_bytes()[40:80]).decode() not in repr(signer)
    assert "PRIVATE" not in repr(signer) and "_key" not in repr(signer)


def test_vialflow_run_with_a_key_writes_emails_that_verify(tmp_path):
    path, record = ed25519_key(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    env.update(VIALFLOW_DKIM_KEY_FILE=str(path), VIALFLOW_DKIM_SELECTOR=SELECTOR, VIALFLOW_DKIM_DOMAIN=DOMAIN)
    done = subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", "run", str(FIXTURE), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    emails = sorted((tmp_path / "out" / "mail").glob("*.eml"))
    assert emails
    for eml in emails:
        assert dkim.verify(eml.read_bytes(), dnsfunc=dns(record)), eml.name
