"""DKIM (RFC 6376): each message signed by the sending domain's key, with dkimpy.

Headers relaxed, body simple (c=relaxed/simple): the body is ours, CRLF and unchanged in transit as
8bit or base64, and simple canonicalisation halves the cost of signing (`python -m bench dkim`).

The key is read once per process (a PEM file: RSA in PKCS#1 or PKCS#8, or Ed25519 in PKCS#8 as
`openssl genpkey -algorithm ed25519` writes it). The signature covers the headers a reader trusts and
over-signs them (RFC 6376 §8.15): `h=` names each once more than the message holds it, so one more
From, Reply-To or Subject, above or below the signed ones, breaks the signature.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dkim

# Signed and over-signed, present or not (an absent one is signed as absent): who wrote, to whom, who
# is answered, what and when, which email it replaces, how to read the body, and every X-Vialflow-*
# header the message holds (these three always).
OVERSIGNED = (b"from", b"sender", b"reply-to", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to",
              b"references", b"supersedes", b"mime-version", b"content-type", b"content-transfer-encoding",
              b"x-vialflow-session", b"x-vialflow-run", b"x-vialflow-recipient")
_FIELD = re.compile(rb"(?m)^([!-9;-~]+)[ \t]*:")
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_ED25519_PKCS8 = bytes.fromhex("302e020100300506032b657004220420")  # then the 32-byte seed


class DkimKeyError(ValueError):
    """The DKIM key file cannot be used."""


@dataclass(frozen=True)
class Signer:
    """Signs message bytes: returns them with a DKIM-Signature header in front."""

    selector: str
    domain: str
    algorithm: str  # rsa-sha256 or ed25519-sha256
    _key: bytes = field(repr=False)  # PEM (RSA) or the base64 seed (Ed25519), as dkimpy takes them

    @classmethod
    def from_file(cls, path: str | Path, selector: str, domain: str) -> "Signer":
        if not selector or not domain:
            raise DkimKeyError("VIALFLOW_DKIM_SELECTOR and VIALFLOW_DKIM_DOMAIN are needed with a DKIM key")
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise DkimKeyError(f"cannot read the DKIM key file {path}: {error.strerror}") from None
        algorithm, key = read_key(data)
        signer = cls(selector, domain, algorithm, key)
        signer(b"From: a@b.example\r\nTo: c@d.example\r\n\r\nkey check\r\n")  # a key dkimpy cannot use fails here
        return signer

    def __call__(self, message: bytes) -> bytes:
        try:
            signature = dkim.sign(message, self.selector.encode(), self.domain.encode(), self._key,
                                  canonicalize=(b"relaxed", b"simple"), include_headers=signed_headers(message),
                                  signature_algorithm=self.algorithm.encode())
        except dkim.DKIMException as error:
            raise ValueError(f"DKIM signing failed: {type(error).__name__}") from None
        return signature + message


def signed_headers(message: bytes) -> list[bytes]:
    """`h=`: each header of OVERSIGNED and each X-Vialflow-* one, named once more than it appears."""
    counts = Counter(name.lower() for name in _FIELD.findall(message.split(b"\r\n\r\n", 1)[0]))
    names = list(OVERSIGNED) + sorted(name for name in counts if name.startswith(b"x-vialflow-")
                                      and name not in OVERSIGNED)
    return [name for name in names for _ in range(counts[name] + 1)]


def read_key(data: bytes) -> tuple[str, bytes]:
    """(algorithm, key as dkimpy takes it) from a PEM file, or from dknewkey's base64 Ed25519 seed."""
    found = _PEM.search(data)
    if found is None:
        try:
            seed = base64.b64decode(data.strip(), validate=True)
        except ValueError:
            seed = b""
        if len(seed) == 32:
            return "ed25519-sha256", base64.b64encode(seed)
        raise DkimKeyError("the DKIM key file holds no PEM private key")
    kind, body = found.group(1), base64.b64decode(b"".join(found.group(2).split()))
    if kind == b"PRIVATE KEY" and len(body) == 48 and body.startswith(_ED25519_PKCS8):
        return "ed25519-sha256", base64.b64encode(body[16:])
    if kind in (b"RSA PRIVATE KEY", b"PRIVATE KEY"):
        pem = b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, base64.encodebytes(body).strip(), kind)
        return "rsa-sha256", pem
    raise DkimKeyError(f"unsupported DKIM key ({kind.decode()}): RSA or Ed25519 expected")
