"""The outbox's decisions (R9–R11): who a new run writes to, what changed for them, an email's next state."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pandas as pd

from .changes import Redistribution
from .french import vials
from .rules import NAMED_KINDS
from .vocabulary import EmailState


def message_id(session_id: str, version: int, recipient_id: str) -> str:
    return f"<{re.sub(r'[^A-Za-z0-9.-]', '-', session_id)}.r{version}.{recipient_id}@vialflow>"


def next_state(outcome: str, detail: str, attempt: int, now: dt.datetime, delays: tuple[int, ...]) -> dict:
    """The row's columns after attempt number `attempt` ended in `outcome` (sent, retry, failed or
    unknown, as the SMTP adapter reports it): a temporary refusal is tried again after
    `delays[attempt - 1]` seconds while delays remain, then it has failed."""
    values = {"attempts": attempt, "detail": detail[:500]}
    if outcome == "sent":
        return {**values, "state": EmailState.SENT.value, "sent_at": now}
    if outcome == "retry" and attempt <= len(delays):
        return {**values, "state": EmailState.RETRY.value,
                "next_attempt_at": now + dt.timedelta(seconds=delays[attempt - 1])}
    if outcome == "unknown":
        return {**values, "state": EmailState.UNKNOWN.value}
    return {**values, "state": EmailState.FAILED.value}


def line_states(lines: pd.DataFrame, deliveries: pd.DataFrame) -> pd.DataFrame:
    """Each line with what its recipients read of it, as one comparable text: `state` beside
    order_id, finess, effector, rpps and allocated."""
    pieces = deliveries.assign(piece=[f"{day or 'pending'}:{vials}"
                                      for day, vials in zip(deliveries["delivery_date"], deliveries["vials"])])
    ordered = pieces.sort_values(["order_id", "piece"])
    # One pass over plain lists: a groupby with a Python join calls back once per line, 5 s for a national run.
    grouped: dict[str, list[str]] = defaultdict(list)
    for order_id, piece in zip(ordered["order_id"].tolist(), ordered["piece"].tolist()):
        grouped[order_id].append(piece)
    joined = {order_id: ",".join(items) for order_id, items in grouped.items()}
    found = lines[["order_id", "finess", "effector", "rpps", "allocated"]].copy()
    found["state"] = (lines["allocated"].astype(str) + "|" + lines["status"] + "|" + lines["reason"] + "|"
                      + pd.Series([joined.get(order_id, "") for order_id in lines["order_id"].tolist()],
                                  index=lines.index, dtype=str))
    return found


def recipients_of(lines: pd.DataFrame, pharmacies: pd.DataFrame, professionals: pd.DataFrame) -> list[str]:
    """R9, as a run's first version writes to: every officine of the register that ordered, and every
    professional of the register named on a doctor's, occupational doctor's or midwife's line; sorted."""
    officines = set(lines["finess"]) & set(pharmacies["finess"])
    named = set(lines.loc[lines["effector"].isin(NAMED_KINDS), "rpps"]) & set(professionals["rpps"])
    return sorted(officines | named)


def _parties(line: dict) -> set[str]:
    return {line["finess"]} | ({line["rpps"]} if line["effector"] in NAMED_KINDS else set())


def changed_recipients(old: pd.DataFrame, new: pd.DataFrame, redistributed: tuple[Redistribution, ...]) -> set[str]:
    """R11: the recipients (FINESS or RPPS) of the lines whose state changed between two versions
    (`line_states` of each), and the parties of each new redistribution (R10)."""
    was = old.set_index("order_id")["state"]
    touched: set[str] = set()
    for line in new[new["order_id"].map(was) != new["state"]].to_dict("records"):
        touched |= _parties(line)
    by_order = new.set_index("order_id")
    for item in redistributed:
        touched |= _parties({"order_id": item.order_id, **by_order.loc[item.order_id].to_dict()})
        touched.add(item.to_rpps)
    return touched


def what_changed(old: pd.DataFrame, new: pd.DataFrame, redistributed: tuple[Redistribution, ...],
                 names: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Per recipient, short French sentences saying what changed (R11) between the `line_states`
    of two versions, with the new redistributions (R10). `names` gives the officines' and the
    professionals' names by FINESS or RPPS, said beside their numbers."""
    was = old.set_index("order_id")
    names = names or {}
    said: dict[str, list[str]] = defaultdict(list)

    def tell(line: dict, sentence: str) -> None:
        for party in sorted(_parties(line), key=lambda p: p != line["finess"]):
            said[party].append(sentence)

    for line in new[new["order_id"].map(was["state"]) != new["state"]].to_dict("records"):
        before = int(was.loc[line["order_id"], "allocated"])
        if before != line["allocated"]:
            tell(line, f"Commande {line['order_id']} : {vials(int(line['allocated']))} "
                       f"{'servi' if abs(int(line['allocated'])) < 2 else 'servis'} au lieu de {before}.")
        else:
            tell(line, f"Commande {line['order_id']} : dates de livraison modifiées.")
    by_order = new.set_index("order_id")
    for item in redistributed:
        line = {"order_id": item.order_id, **by_order.loc[item.order_id].to_dict()}
        count, to, finess = item.vials, item.to_rpps, line["finess"]
        plural = "s" if count > 1 else ""
        who = names.get(to)
        receiver = f"{'au ' if who and who.startswith(('Dr ', 'Pr ')) else 'à '}{who} (RPPS {to})" if who else \
            f"au professionnel de santé RPPS {to}"
        tell(line, f"Commande {item.order_id} : {vials(count)} non récupéré{plural} redistribué{plural} {receiver}.")
        officine = f"{names[finess]} (FINESS {finess})" if names.get(finess) else f"FINESS {finess}"
        said[to].append(f"{vials(count)} de la commande {item.order_id} "
                        f"{'vous sont redistribués' if plural else 'vous est redistribué'} : à retirer à l'officine "
                        f"{officine}.")
    return said
