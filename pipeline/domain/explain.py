"""Why a line got what it got: the stored trace of its decision as the object of `vialflow explain`,
and the French sentences a support adviser reads out to a pharmacist."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from .french import french_date, number, ordinal, vials
from .rules import Session
from .vocabulary import Injection, Kind, Reason


def sold_out(decisions: pd.DataFrame, vaccines: list[str] | None = None) -> dict[str, pd.Timestamp | None]:
    """Per vaccine, the instant it sold out (R7): the submission time of its first line, in
    submission order, refused for supply; None when none was. Needs vaccine, status, reason,
    submitted_at and rank."""
    keys = vaccines if vaccines is not None else list(dict.fromkeys(decisions["vaccine"]))
    refused = decisions[(decisions["status"] == "refused") & (decisions["reason"] == "supply")]
    first = refused.sort_values("rank", kind="stable").drop_duplicates("vaccine")
    at = dict(zip(first["vaccine"], first["submitted_at"]))
    return {key: at.get(key) for key in keys}


def _count(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def explanation(line: dict, deliveries: list[tuple[dt.date | None, int]], earlier: list[dict], run: int,
                session: Session, sold_out_at: pd.Timestamp | None) -> dict:
    """The object of `vialflow explain --json` (docs/contract.md) for one stored line: its decision
    and trace columns, its deliveries (date or None, vials), and the earlier lines of the same
    beneficiary (order_id, capped) that used its cap."""
    dated = [{"date": day.isoformat(), "vials": int(n)} for day, n in sorted(
        ((d, n) for d, n in deliveries if d is not None), key=lambda piece: piece[0])]
    outright = _count(line.get("cap")) is None
    zone = ZoneInfo(session.timezone)
    return {
        "order_id": line["order_id"], "run": run, "rank": int(line["rank"]) + 1,
        "requested": int(line["requested"]), "cap": _count(line.get("cap")),
        "cap_used_before": _count(line.get("cap_used_before")), "after_cap": _count(line.get("after_cap")),
        "after_unit": None if outright else int(line["capped"]),
        "supply_before": _count(line.get("supply_before")),
        "allocated": int(line["allocated"]), "status": line["status"], "reason": line["reason"],
        "deliveries": dated, "pending": sum(int(n) for d, n in deliveries if d is None),
        "session": session.id, "finess": line["finess"], "effector": line["effector"], "rpps": line["rpps"],
        "vaccine": line["vaccine"], "injection": line["injection"], "nurses": _count(line.get("nurses")),
        "pro_rata_share": None if pd.isna(line.get("pro_rata_share")) else float(line["pro_rata_share"]),
        "earlier_lines": [{"order_id": e["order_id"], "kept": int(e["capped"])} for e in earlier],
        "submitted_at": pd.Timestamp(line["submitted_at"]).tz_convert(zone).isoformat(),
        "sold_out_at": None if sold_out_at is None else pd.Timestamp(sold_out_at).tz_convert(zone).isoformat(),
    }


def sentences(found: dict, session: Session) -> list[str]:
    """`explanation` in French, one clause per step, as an adviser would say it."""
    vaccine = session.vaccines.get(found["vaccine"])
    label = vaccine.label if vaccine else found["vaccine"]
    zone = ZoneInfo(session.timezone)
    place = session.timezone.rsplit("/", 1)[-1].replace("_", " ")
    kind, injection = Kind.labelled(found["effector"], long=True), Injection.labelled(found["injection"])
    said = [f"{ordinal(found['rank'])} ligne arrivée, le {_instant(found['submitted_at'], zone, place)}",
            f"{vials(found['requested'])} {_of(label)} demandés ({kind}, {injection})"]
    if found["cap"] is None:
        said.append(Reason.labelled(found["reason"], long=True) + _outright(found, session, label, kind, injection))
        return said + ["aucun flacon servi"]
    said.append(_cap(found))
    if found["after_unit"] < found["after_cap"]:
        said.append(f"livré par boîtes entières de {vaccine.box_vials} flacons : {number(found['after_cap'])} "
                    f"ramenés à {number(found['after_unit'])}")
    if found["supply_before"] is not None:
        said.append(f"stock de {label} restant à son tour : {vials(found['supply_before'])}")
    if found["pro_rata_share"] is not None:
        said.append(f"répartition au prorata : part de {found['pro_rata_share']:.2f} flacons".replace(".", ","))
    if found["reason"] == "supply" and found["sold_out_at"]:
        said.append(f"stock de {label} épuisé à {_instant(found['sold_out_at'], zone, place, time_only=True)}")
    given = found["allocated"]
    said.append(f"aucun flacon servi sur {number(found['requested'])}" if not given else
                f"{vials(given)} servi{'s' if given > 1 else ''} sur {number(found['requested'])}")
    said.extend(f"livraison le {french_date(dt.date.fromisoformat(d['date']))} : {vials(d['vials'])}"
                for d in found["deliveries"])
    if found["pending"]:
        said.append(f"{vials(found['pending'])} en attente : date de livraison communiquée ultérieurement")
    return said


def _outright(found: dict, session: Session, label: str, kind: str, injection: str) -> str:
    """What the line's outright refusal (R1–R3, R12) is about, said after its reason."""
    if found["reason"] == Reason.WINDOW:
        return (f" (du {french_date(session.opens_at.date())} {session.opens_at:%H:%M} "
                f"au {french_date(session.closes_at.date())} {session.closes_at:%H:%M})")
    if found["reason"] == Reason.UNKNOWN_PHARMACY:
        return f" : FINESS {found['finess']}"
    if found["reason"] == Reason.ELIGIBILITY:
        return f" ({label}, {kind}, {injection})"
    return ""


def _cap(found: dict) -> str:
    if found["effector"] == "infirmier":
        nurses = found["nurses"] or 0
        per = found["cap"] // nurses if nurses else 0
        text = (f"plafond de {vials(found['cap'])} pour {nurses} infirmier{'s' if nurses > 1 else ''} "
                f"rattaché{'s' if nurses > 1 else ''}"
                + (f" ({per} par infirmier)" if nurses else ""))
    elif found["effector"] == "pharmacien":
        text = f"plafond de {vials(found['cap'])} pour l'officine"
    else:
        text = f"plafond de {vials(found['cap'])} par {Kind.labelled(found['effector'], long=True)}"
    if found["cap_used_before"]:
        ids = ", ".join(e["order_id"] for e in found["earlier_lines"] if e["kept"])
        text += f", dont {number(found['cap_used_before'])} déjà commandés par " + (
            f"la ligne {ids}" if "," not in ids else f"les lignes {ids}")
    return text


def _of(label: str) -> str:
    """`de Moderna`, `d'AstraZeneca`."""
    return f"d'{label}" if label[:1].lower() in "aeiouyhéèêà" else f"de {label}"


def _instant(iso: str, zone: ZoneInfo, place: str, time_only: bool = False) -> str:
    when = pd.Timestamp(iso).tz_convert(zone)
    clock = f"{when:%H:%M:%S} (heure de {place})"
    return clock if time_only else f"{french_date(when.date())} à {clock}"
