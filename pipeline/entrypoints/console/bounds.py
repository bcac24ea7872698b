"""What a request may carry, checked before any query (OWASP ASVS V13.1): identifiers of their
contract shape, whole numbers of ASCII digits that fit SQLite's 64-bit integers, bounded texts,
bodies and nesting. Each mistake is a `BadInput` (400) said in French, or a 404 for a path."""

from __future__ import annotations

import json
import re

from starlette.convertors import Convertor, register_url_convertor

from pipeline.domain.identifiers import CONTROL, IDENTIFIER
from pipeline.services import ServiceError

BIGGEST = 2**63 - 1  # SQLite's INTEGER and PostgreSQL's bigint
# ASCII digits only (str.isdigit() takes `²`, int() takes `٣`); 18 of them always fit BIGGEST.
DIGITS = re.compile(r"[0-9]{1,18}")
DEPTH = 16  # the deepest a changes object nests is 3 (changes › depot_days › item)
SEARCH_LONGEST = 100
BODY_LONGEST = 2 * 1024 * 1024  # an uploaded changes.toml is at most 1 MB; a form or JSON body far less


class BadInput(ServiceError):
    """A value of the request that is not of its shape: 400, said in French."""

    status = 400


class TooLarge(ServiceError):
    """A body over BODY_LONGEST: 413, refused before it is read whole."""

    status = 413

    def __init__(self) -> None:
        super().__init__(f"Requête trop volumineuse ({BODY_LONGEST // (1024 * 1024)} Mo au plus).")


def whole(text: str | None, what: str, required: bool = False) -> int | None:
    """A positive whole number of ASCII digits (`²`, `٣`, signs and spaces refused), fitting 64 bits."""
    if text is None or text == "":
        if required:
            raise BadInput(f"{what[:1].upper() + what[1:]} : un nombre entier est attendu.")
        return None
    if not DIGITS.fullmatch(text) or int(text) == 0:
        raise BadInput(f"{what[:1].upper() + what[1:]} : « {_quoted(text)} » n'est pas un nombre entier "
                       "positif (18 chiffres au plus).")
    return int(text)


def identifier(text: str | None, what: str) -> str | None:
    """A session id or an order id as the contract shapes them, or None when absent."""
    if text is None or text == "":
        return None
    if not re.fullmatch(IDENTIFIER, text):
        raise BadInput(f"{what[:1].upper() + what[1:]} : « {_quoted(text)} » n'est pas un identifiant (1 à 32 "
                       "lettres ou chiffres ASCII, « . », « _ » ou « - »).")
    return text


def search_text(text: str) -> str:
    """What support types to find an officine by name: one line of at most SEARCH_LONGEST characters."""
    if re.search(CONTROL, text):
        raise BadInput("La recherche contient un caractère de contrôle : retapez-la.")
    if len(text) > SEARCH_LONGEST:
        raise BadInput(f"La recherche tient en {SEARCH_LONGEST} caractères au plus.")
    return text


def json_value(text: str | bytes, what: str = "Le corps de la requête") -> object:
    """JSON read with its nesting bounded: thousands of `[` are refused, not a RecursionError."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadInput(f"{what} imbrique trop de niveaux ({DEPTH} au plus).") from None
    except ValueError:
        raise BadInput(f"{what} n'est pas du JSON.") from None
    nested(value, what)
    return value


def toml_changes(read, content: bytes):
    """An uploaded changes.toml read by `read`, its nesting bounded like JSON's."""
    try:
        return read(content)
    except RecursionError:
        raise BadInput(f"Le fichier de modifications imbrique trop de niveaux ({DEPTH} au plus).") from None


def nested(value: object, what: str) -> None:
    """Refuse a value (read from JSON or TOML) that nests deeper than DEPTH, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > DEPTH:
            raise BadInput(f"{what} imbrique trop de niveaux ({DEPTH} au plus).")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _quoted(text: str) -> str:
    shown = re.sub(CONTROL, "?", text[:20])
    return shown + "…" if len(text) > 20 else shown


class IdentifierConvertor(Convertor):
    """`{session_id:id}`, `{order_id:id}`: a path that is no identifier matches no route (404)."""

    regex = IDENTIFIER

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class NumberConvertor(Convertor):
    """`{version:number}`, `{outbox_id:number}`: 1 to 18 ASCII digits, so always a 64-bit integer."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdentifierConvertor())
register_url_convertor("number", NumberConvertor())
