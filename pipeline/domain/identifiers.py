"""The shape of every identifier, code, count and text an input file may carry (CONTRACT.md,
"Identifiers"), defined once for the scenario reader, the session model and the changes model."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr

# Patterns for re.fullmatch (and pandas' str.fullmatch). Explicit ASCII classes: `\d` would also
# take Arabic-Indic or full-width digits, which int() reads but no register holds.
IDENTIFIER = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"  # order_id, depot_id, session id, vaccine key
FINESS = r"[0-9][0-9AB][0-9]{7}"  # A or B second: Corsica, 2A and 2B
RPPS = r"[0-9]{11}"
# A product's code as wholesalers key it: a CIP13 (a GTIN-13 starting 3400) or any GTIN (8, 12, 13 or 14
# digits). Only the shape is checked: check digits are the product's owner's to get right.
PRODUCT_CODE = r"[0-9]{8}|[0-9]{12,14}"
# 01-95 without 20 (Corsica is 2A and 2B since 1976), and the five overseas departments.
DEPARTMENT = r"0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5]|97[1-6]"
# The one integer rule of every file: ASCII digits only (no sign, no full-width digit, no
# exponent), after the reader has stripped surrounding spaces and tabs. Nine digits at most, so
# that every count fits PostgreSQL's `integer` and numpy's int64 sums.
WHOLE = r"[0-9]{1,9}"
MAX_COUNT = 999_999_999
# Refused in every text field: control characters (PostgreSQL text refuses NUL; a line break or
# an escape has no place in a one-line field that ends up in a mail header) and lone surrogates
# (not encodable in UTF-8).
CONTROL = "[\x00-\x1f\x7f-\x9f\ud800-\udfff]"

IDENTIFIER_RULE = "1 to 32 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
# The same rules, in French, for the messages of rejections.csv (read by the people who sent the orders).
IDENTIFIER_RULE_FR = "1 à 32 lettres ASCII, chiffres, « - », « _ » ou « . », commençant par une lettre ou un chiffre"
DEPARTMENT_RULE = "a French department code (01 to 95 without 20, 2A, 2B, 971 to 976)"
FINESS_RULE = "a FINESS number (9 digits, A or B allowed second)"
RPPS_RULE = "an RPPS number (11 digits)"
PRODUCT_CODE_RULE = "a product code (a CIP13 or GTIN: 8, 12, 13 or 14 digits, quoted)"
TEXT_LIMIT = 500  # free text (names, labels): no column limit, but a sane one for emails and pages
EMAIL_LIMIT = 254  # RFC 5321's longest address


def shown(value: object, width: int = 40, characters: str = "characters") -> str:
    """A value as a message quotes it: escaped onto one line, long ones cut with their length (in
    `characters`, the word of the message's language)."""
    if isinstance(value, str) and len(value) > width:
        return f"{value[:width]!r}… ({len(value)} {characters})"
    return repr(value)


def _shaped(pattern: str, rule: str):
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{shown(value)} is not {rule}")
        return value
    return AfterValidator(check)


def _text(limit: int):
    def check(value: str) -> str:
        if len(value) > limit or re.search(CONTROL, value):
            raise ValueError(f"{shown(value)} is not text of at most {limit} characters without control characters")
        return value
    return AfterValidator(check)


Identifier = Annotated[StrictStr, _shaped(IDENTIFIER, f"an identifier ({IDENTIFIER_RULE})")]
Rpps = Annotated[StrictStr, _shaped(RPPS, RPPS_RULE)]
Department = Annotated[StrictStr, _shaped(DEPARTMENT, DEPARTMENT_RULE)]
Text = Annotated[StrictStr, _text(TEXT_LIMIT)]
# Strict: "170" or 170.0 or true in a TOML file is a mistake to show, not a number to guess.
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[StrictInt, Field(ge=1, le=MAX_COUNT)]
