"""Headers and MIME parts written by hand: cleaned text, checked addresses, RFC 2047 words, folded lines.

The standard `email` package takes about 4 ms a message, mostly folding headers; the output of this
module is checked against its parser in the tests.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from email.utils import format_datetime
from functools import lru_cache

# C0, DEL, C1 and the Unicode line/paragraph separators: none may reach a header or a body line.
_CONTROLS = {code: " " for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII without < > and one @
_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ATOM_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_TEXT_WORD = re.compile(r"[!-~]+")
_MAILBOX = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*")
_WORD_BYTES = 45  # 60 base64 characters: an encoded-word of at most 75 characters (RFC 2047)


def clean(text: str) -> str:
    """The text on one line: control characters (and line or paragraph separators) become spaces, runs of
    spaces one space, no space at either end."""
    text = str(text)
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.translate(_CONTROLS).split())


def check_address(address: str) -> str:
    """One ASCII addr-spec (`local@domain`), or ValueError: no display name, comma, bracket or space."""
    if (not isinstance(address, str) or len(address) > 254 or not _ADDRESS.fullmatch(address)
            or len(address.partition("@")[0]) > 64):
        raise ValueError(f"invalid email address {address!r}")
    return address



def mailbox(name: str, address: str) -> str:
    """`Display Name <local@domain>` for a header: the name cleaned and quoted or RFC 2047-encoded."""
    address = check_address(address)
    name = clean(name)[:200].rstrip()
    if not name:
        return address
    phrase = _phrase(name)
    last = len(phrase.rsplit("\n", 1)[-1]) if "\n" in phrase else 6 + len(phrase)  # after "From: "
    separator = " " if last + len(address) + 3 <= 78 else "\r\n "
    return f"{phrase}{separator}<{address}>"



def part(boundary: str, content_type: str, filename: str | None, body: bytes, marker: bytes,
         binary: bool = False) -> bytes:
    """A text part as 8bit (readable and greppable in the .eml; the sender announces BODY=8BITMIME), or
    base64 when a line would pass SMTP's 998 octets or the body holds the boundaries' token; a `binary`
    part always in base64."""
    if not binary and max(map(len, body.split(b"\r\n"))) <= 998 and marker not in body:
        encoding = "7bit" if body.isascii() else "8bit"
        body += b"\r\n"  # this CRLF belongs to the next boundary line (RFC 2046 5.1.1), not to the content
    else:
        encoded = binascii.b2a_base64(body, newline=False)
        body = b"\r\n".join([encoded[start:start + 76] for start in range(0, len(encoded), 76)]) + b"\r\n"
        encoding = "base64"
    disposition = f'; name="{filename}"\r\nContent-Disposition: attachment; filename="{filename}"' if filename else ""
    return b"".join((f"--{boundary}\r\nContent-Type: {content_type}{disposition}\r\n"
                     f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode(), body))


@lru_cache(maxsize=1024)
def header_text(text: str) -> str:
    """Unstructured header text: as is when plain ASCII, else folded RFC 2047 encoded-words."""
    text = clean(text)
    if text.isascii() and len(text) < 900 and "=?" not in text:
        return text
    return _words(text, _TEXT_WORD)


@lru_cache(maxsize=1024)
def _phrase(name: str) -> str:
    """A display name: as is when made of atoms, else a quoted-string (ASCII) or, around the words that
    need it, RFC 2047 encoded-words (the plain words stay readable)."""
    if name.isascii() and "=?" not in name:  # "=?" would read as an encoded-word, even quoted
        if _PHRASE.fullmatch(name):
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _words(name, _ATOM_WORD)


def _words(text: str, plain: re.Pattern) -> str:
    """The text's words as they are where `plain` allows, else as RFC 2047 encoded-words, folded."""
    pieces: list[str] = []
    run: list[str] = []  # consecutive words to encode together, so that their spaces survive
    for word in text.split(" "):
        if plain.fullmatch(word) and "=?" not in word:
            if run:
                pieces.append(_encoded_words(" ".join(run)))
                run = []
            pieces.append(word)
        else:
            run.append(word)
    if run:
        pieces.append(_encoded_words(" ".join(run)))
    return _fold_words(pieces)


def _fold_words(pieces: list[str]) -> str:
    """Pieces joined by spaces, or by a fold (CRLF, space) where a line would pass 70 characters."""
    out = [pieces[0]]
    width = len(pieces[0].rsplit("\n", 1)[-1]) if "\n" in pieces[0] else 6 + len(pieces[0])  # after "From: "
    for piece in pieces[1:]:
        if width + 1 + len(piece.split("\r\n", 1)[0]) > 70:
            out.append("\r\n ")
            width = 1
        else:
            out.append(" ")
            width += 1
        out.append(piece)
        width = width + len(piece) if "\n" not in piece else len(piece.rsplit("\n", 1)[-1])
    return "".join(out)


def _encoded_words(text: str) -> str:
    """Folded B-encoded words of at most 75 characters, never splitting a UTF-8 sequence and, where it
    can, cutting after a space (whitespace between encoded-words is not part of the text)."""
    data, words, start = text.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        if end < len(data):
            space = data.rfind(b" ", start + 15, end)
            if space != -1:
                end = space + 1
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode()}?=")
        start = end
    return "\r\n ".join(words)


@lru_cache(maxsize=64)
def sender(sender: str) -> str:
    sender = clean(sender)
    match = _MAILBOX.fullmatch(sender)
    if match:
        return mailbox(match.group(1).strip('"'), match.group(2).strip())
    return check_address(sender)


def message_id(value: str, sender_text: str) -> str:
    """The Message-ID `value` (`<left@right>`) on the sending domain, the domain of the `sender_text`
    address (RFC 5322 3.6.4: the right-hand side names where the id is unique): `<left@domain>`."""
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value) or value.count("@") != 1:
        raise ValueError(f"invalid Message-ID {value!r}")
    return f"{value.partition('@')[0]}@{sending_domain(sender_text)}>"


@lru_cache(maxsize=64)
def sending_domain(sender_text: str) -> str:
    """The domain of the sender's address, as `sender` reads it, in lower case."""
    match = _MAILBOX.fullmatch(clean(sender_text))
    return check_address(match.group(2).strip() if match else clean(sender_text)).partition("@")[2].lower()


@lru_cache(maxsize=64)
def date(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("the Date of a message must be an aware datetime")
    return format_datetime(when)

