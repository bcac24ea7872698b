"""The French a reader of the notice expects: dates as written in French, counts of vials, ordinals."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")


@lru_cache(maxsize=4096)
def french_date(day: dt.date) -> str:
    """`vendredi 25 juin 2021`, `jeudi 1er juillet 2021`, whatever the process locale."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{DAYS[day.weekday()]} {number} {MONTHS[day.month - 1]} {day.year}"


def vials(count: int) -> str:
    return f"{count} flacon" if -2 < count < 2 else f"{count} flacons"


def doses(count: int) -> str:
    """`1 dose`, `12 345 doses`: what a pharmacist books appointments in."""
    return f"{number(count)} dose" if -2 < count < 2 else f"{number(count)} doses"


def vials_and_doses(count: int, doses_per_vial: int) -> str:
    """`3 flacons (15 doses)`: vials with the doses they hold; vials alone when there are none or the doses per
    vial are not known."""
    return f"{vials(count)} ({doses(count * doses_per_vial)})" if doses_per_vial > 0 and count else vials(count)


def number(count: int) -> str:
    """`12 345`: thousands set apart by a narrow no-break space, as French typography does."""
    return f"{count:,}".replace(",", "\u202f")


def ordinal(count: int) -> str:
    """`1re`, `2e`, `12 345e` (feminine, as for a line: « la 1re ligne »)."""
    return "1re" if count == 1 else f"{number(count)}e"
