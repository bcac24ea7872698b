"""What a run comes to, from its allocations and deliveries: the summary and the depots' rounds."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from .explain import sold_out
from .fairness import fairness
from .vocabulary import SETTLED
from .rules import Session

# The contract's first six columns, then what a wholesaler's import needs to key and reconcile each row.
MANIFEST_COLUMNS = ["delivery_date", "finess", "officine", "vaccine", "vials", "boxes", "depot_id", "wholesaler",
                    "department", "vaccine_label", "product_code", "order_ids", "status"]


def summarise(session: Session, run, allocations: pd.DataFrame, deliveries: pd.DataFrame,
              pharmacies: pd.DataFrame) -> dict:
    """Per vaccine: lines, vials requested and allocated, lines by status and reason, vials
    scheduled and pending, the run's supply, the fill rate (allocated of the capped demand) and the
    instant it sold out, in the session's time zone and in UTC; per depot: vials per day and
    pending vials; per vaccine its fairness figures (domain/fairness.py). `allocations` needs capped,
    rank and submitted_at beside the allocations.csv columns; `run` its version, operator, reason,
    changes and digest; `pharmacies` finess and department."""
    zone = ZoneInfo(session.timezone)
    supplies = {key: v.supply_vials for key, v in session.vaccines.items()} | run.changes.supply
    sold = sold_out(allocations, list(session.vaccines))
    fair = fairness(allocations, pharmacies, list(session.vaccines))
    vaccines = {}
    for key in session.vaccines:
        lines = allocations[allocations["vaccine"] == key]
        refused = lines[lines["status"] == "refused"]["reason"].value_counts().sort_index()
        cut = lines[lines["status"] == "partial"]["reason"].value_counts().sort_index()
        rows = deliveries[deliveries["vaccine"] == key]
        vaccines[key] = {
            "lines": int(len(lines)), "requested": int(lines["requested"].sum()),
            "allocated": int(lines["allocated"].sum()),
            "served_lines": int((lines["status"] == "served").sum()),
            "partial_lines": {k: int(n) for k, n in cut.items()},
            "refused_lines": {k: int(n) for k, n in refused.items()},
            "scheduled_vials": int(rows.loc[rows["status"] == "scheduled", "vials"].sum()),
            "pending_vials": int(rows.loc[rows["status"] == "pending", "vials"].sum()),
            "supply": supplies.get(key),
            "fill_rate": _rate(int(lines["allocated"].sum()), int(lines["capped"].sum())),
            "sold_out_at": None if sold[key] is None else sold[key].tz_convert(zone).isoformat(),
            "sold_out_at_utc": None if sold[key] is None else sold[key].tz_convert("UTC").isoformat(),
            "fairness": fair[key],
        }
    scheduled = deliveries[deliveries["status"] == "scheduled"]
    use = scheduled.groupby(["depot_id", "delivery_date"])["vials"].sum()
    capacity = {}
    for (depot, day), vials in use.items():
        capacity.setdefault(depot, {})[day] = int(vials)
    pending = deliveries[deliveries["status"] == "pending"].groupby("depot_id")["vials"].sum()
    return {
        "session": session.id, "run": int(run.version), "operator": run.operator, "reason": run.reason,
        "digest": getattr(run, "digest", None), "vaccines": vaccines,
        "deliveries": {"capacity_used": capacity, "pending_vials_by_depot": {k: int(v) for k, v in pending.items()}},
    }


def _rate(part: int, whole: int) -> float | None:
    """`part / whole` to four decimals; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def emails_summary(counts: dict[str, int]) -> dict:
    """Outbox rows per state as the summary gives them: sent, failed, unknown, and still waiting."""
    return {"sent": counts.get("sent", 0), "failed": counts.get("failed", 0), "unknown": counts.get("unknown", 0),
            "waiting": sum(n for state, n in counts.items() if state not in SETTLED)}


def manifest_rounds(deliveries: pd.DataFrame, pharmacies: pd.DataFrame, depots: pd.DataFrame,
                    session: Session) -> pd.DataFrame:
    """What each depot's rounds carry, as MANIFEST_COLUMNS: per depot, day, officine and vaccine the
    vials `scheduled`, in date order, then per depot, officine and vaccine the vials `pending` (no
    delivery_date); each row with the order ids it serves. Scheduled rows add up to the depot's
    scheduled deliveries, pending rows to its pending vials (R8).

    `deliveries` as deliveries.csv (delivery_date a text, empty when pending); `pharmacies` needs
    finess, name and department; `depots` depot_id and wholesaler."""
    keys = ["depot_id", "status", "delivery_date", "finess", "vaccine"]
    lines = deliveries.assign(delivery_date=deliveries["delivery_date"].fillna(""))
    lines = lines.sort_values("order_id", kind="stable").reset_index(drop=True)
    # Groups numbered once, in order of first appearance; the sums and the id lists are then by number
    # (a Python function per group took 2 s of the national session's 129,000 deliveries).
    group = lines.groupby(keys, sort=False).ngroup()
    rows = lines.loc[~group.duplicated(), keys].reset_index(drop=True)
    rows["vials"] = lines["vials"].groupby(group).sum().to_numpy()
    served = ~pd.DataFrame({"group": group, "order_id": lines["order_id"]}).duplicated()
    rows["order_ids"] = ((lines["order_id"] + " ")[served].groupby(group[served]).sum().str.rstrip()
                         .to_numpy() if served.any() else [])
    vaccines = session.vaccines
    register = pharmacies.set_index("finess")
    rows = rows.assign(
        boxes=rows["vials"] // rows["vaccine"].map({k: v.box_vials for k, v in vaccines.items()}),
        officine=rows["finess"].map(register["name"]).fillna(""),
        department=rows["finess"].map(register["department"]).fillna(""),
        wholesaler=rows["depot_id"].map(depots.set_index("depot_id")["wholesaler"]).fillna(""),
        vaccine_label=rows["vaccine"].map({k: v.label for k, v in vaccines.items()}),
        product_code=rows["vaccine"].map({k: v.product_code or "" for k, v in vaccines.items()}),
        _pending=rows["status"] == "pending")
    ordered = rows.sort_values(["depot_id", "_pending", "delivery_date", "finess", "vaccine"], kind="stable")
    return ordered[MANIFEST_COLUMNS].reset_index(drop=True)
