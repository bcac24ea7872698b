"""One ordering session's rules (the notice as data): window, zone, vaccines, caps, supply, delivery window."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationInfo, field_validator, model_validator

from .identifiers import (DEPARTMENT, DEPARTMENT_RULE, PRODUCT_CODE, PRODUCT_CODE_RULE, Count, Identifier,
                          PositiveCount, Text, shown)
from .vocabulary import Injection as InjectionCode, Kind as KindCode, Policy as PolicyCode

KINDS = tuple(kind.value for kind in KindCode)  # the vocabulary's, in its order
PROFESSIONAL_KINDS = tuple(kind for kind in KINDS if kind != KindCode.PHARMACIEN)  # the officine's is its own
# Lines of these effectors name their professional by RPPS; the others are the officine's own.
NAMED_KINDS = (KindCode.MEDECIN.value, KindCode.MEDECIN_TRAVAIL.value, KindCode.SAGE_FEMME.value)
INJECTIONS = tuple(injection.value for injection in InjectionCode)
Policy = Literal[tuple(policy.value for policy in PolicyCode)]  # R7

Kind = Literal[KINDS]
Injection = Literal[INJECTIONS]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Vaccine(_Frozen):
    """One vaccine of the session (notice parts III–V)."""

    label: Text
    doses_per_vial: PositiveCount
    box_vials: PositiveCount = 1
    supply_vials: Count | None = None
    allocation: Policy = "fcfs"
    remainders: StrictBool = True
    deliver_from: dt.date
    deliver_by: dt.date
    # kind -> injection -> vials per beneficiary (per attached nurse for `infirmier`)
    caps: dict[Kind, dict[Injection, Count]] = Field(default_factory=dict)
    # What the depots' dispatch files give wholesalers to key the product on. Left out of the stored
    # JSON when absent, so that a session file without one keeps its input hash.
    product_code: str | None = Field(default=None, exclude_if=lambda code: code is None)

    @field_validator("product_code", mode="before")
    @classmethod
    def _product_code(cls, value: object) -> object:
        if value is None:
            return value
        if not isinstance(value, str):  # a bare number would have lost a GTIN's leading zeros
            raise ValueError(f"product codes are quoted strings: write {shown(str(value))} for {shown(value)}")
        if not re.fullmatch(PRODUCT_CODE, value):
            raise ValueError(f"{shown(value)} is not {PRODUCT_CODE_RULE}")
        return value

    @model_validator(mode="after")
    def _window(self) -> "Vaccine":
        if self.deliver_by < self.deliver_from:
            raise ValueError("deliver_by is before deliver_from")
        return self

    def cap(self, kind: str, injection: str) -> int | None:
        """Vials per beneficiary, or None when the kind/injection is not open (R3)."""
        return self.caps.get(kind, {}).get(injection)  # type: ignore[call-overload]


class Session(_Frozen):
    """A session file: `session.toml` of CONTRACT.md."""

    id: Identifier
    reference: Text = ""
    title: Text = ""
    timezone: StrictStr
    opens_at: dt.datetime
    closes_at: dt.datetime
    confirmation_at: dt.datetime
    zone: Literal["national"] | tuple[str, ...] = "national"
    vaccines: dict[Identifier, Vaccine] = Field(min_length=1)

    @field_validator("zone", mode="before")
    @classmethod
    def _departments(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, (list, tuple)):
            return value  # "national", or the Literal's own message
        # Built in code, an empty zone is a session open to no department; written in a file
        # (validated with context {"file": ...}), it is a slip that would refuse every line.
        if not value and (info.context or {}).get("file"):
            raise ValueError('an empty list of departments; write zone = "national" or list the codes')
        for code in value:
            if not isinstance(code, str):
                raise ValueError(f'department codes are quoted strings: write {shown(str(code))} for {shown(code)} '
                                 '(e.g. zone = ["75", "92", "2A"])')
            if not re.fullmatch(DEPARTMENT, code):
                raise ValueError(f"{shown(code)} is not {DEPARTMENT_RULE}")
        return tuple(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("opens_at", "closes_at", "confirmation_at")
    @classmethod
    def _local_time(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            raise ValueError("a local time without offset is expected (the session's timezone applies)")
        return value

    @model_validator(mode="after")
    def _order(self) -> "Session":
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at is not after opens_at")
        if self.confirmation_at < self.closes_at:
            raise ValueError("confirmation_at is before closes_at (emails go out after the session closes)")
        return self

    def instant(self, local: dt.datetime) -> dt.datetime:
        """A local time of the session as an aware UTC instant."""
        return local.replace(tzinfo=ZoneInfo(self.timezone)).astimezone(dt.timezone.utc)

    @property
    def opens(self) -> dt.datetime:
        return self.instant(self.opens_at)

    @property
    def closes(self) -> dt.datetime:
        return self.instant(self.closes_at)

    @property
    def confirms(self) -> dt.datetime:
        return self.instant(self.confirmation_at)

    def in_zone(self, department: str) -> bool:
        return self.zone == "national" or department in self.zone
