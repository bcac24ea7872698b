"""Use cases, one module each: gather from the database, let the pure core decide, apply, return ids."""

from __future__ import annotations

import dataclasses
from typing import ClassVar


class ServiceError(Exception):
    """A request that cannot be carried out: `str()` is one sentence for the person who made it.

    Each refusal a service gives is a subclass (`refusals.py`): a dataclass carrying its fields, its
    French sentence and the HTTP status it maps to, so that every entry point renders it by its class
    and nothing ever reads its text back. A plain ServiceError("...") is a failure of the set-up
    (no database, no SMTP server) said in one line."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Demande refusée"  # the heading of the console's page

    def __post_init__(self) -> None:
        # The fields as the exception's args too: it pickles, and reads in a traceback, like any other.
        Exception.__init__(self, *(getattr(self, field.name) for field in dataclasses.fields(self)))
