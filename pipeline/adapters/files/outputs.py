"""Write a stored run as the output folder of CONTRACT.md; everything is read back from the database."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, and_, select

from pipeline.domain.rules import Session
from pipeline.services.steps import T, registers, session_rules
from pipeline.adapters.db.frames import read_frame

ALLOCATION_COLUMNS = ["order_id", "finess", "effector", "rpps", "vaccine", "injection",
                      "requested", "allocated", "status", "reason"]
DELIVERY_COLUMNS = ["order_id", "finess", "depot_id", "vaccine", "delivery_date", "vials", "status"]
MANIFEST_COLUMNS = ["delivery_date", "finess", "officine", "vaccine", "vials", "boxes"]


def run_allocations(engine: Engine, session_id: str, run: int) -> pd.DataFrame:
    d, o = T["decisions"], T["orders"]
    query = (select(*[o.c[c] for c in ALLOCATION_COLUMNS[1:6]], d.c.order_id, d.c.requested, d.c.allocated,
                    d.c.status, d.c.reason, d.c.rank)
             .join(o, and_(o.c.session_id == session_id, o.c.order_id == d.c.order_id))
             .where(d.c.run_id == run))
    with engine.connect() as c:
        frame = read_frame(c, query)
    return frame.sort_values(["finess", "rank"], kind="stable")[ALLOCATION_COLUMNS].reset_index(drop=True)


def run_deliveries(engine: Engine, session_id: str, run: int) -> pd.DataFrame:
    v, o = T["deliveries"], T["orders"]
    query = (select(v.c.order_id, o.c.finess, v.c.depot_id, v.c.vaccine, v.c.delivery_date, v.c.vials, v.c.status)
             .join(o, and_(o.c.session_id == session_id, o.c.order_id == v.c.order_id))
             .where(v.c.run_id == run))
    with engine.connect() as c:
        frame = read_frame(c, query)
    frame["delivery_date"] = pd.to_datetime(frame["delivery_date"]).dt.strftime("%Y-%m-%d").fillna("")
    pending_last = frame["delivery_date"].replace("", "9999-12-31")
    order = frame.assign(_key=pending_last).sort_values(["order_id", "_key"], kind="stable").index
    return frame.loc[order, DELIVERY_COLUMNS].reset_index(drop=True)


def session_rejections(engine: Engine, session_id: str) -> pd.DataFrame:
    rj = T["rejections"]
    with engine.connect() as c:
        frame = read_frame(c, select(rj.c.line, rj.c.order_id, rj.c.message)
                           .where(rj.c.session_id == session_id).order_by(rj.c.line))
    return frame if len(frame) else pd.DataFrame(columns=["line", "order_id", "message"])


def write_outputs(engine: Engine, run: int, out: Path) -> dict:
    """allocations.csv, deliveries.csv, rejections.csv, manifests/ and summary.json of one run."""
    out.mkdir(parents=True, exist_ok=True)
    with engine.connect() as c:
        row = c.execute(select(T["runs"]).where(T["runs"].c.id == run)).one()
        session = session_rules(c, row.session_id)
        pharmacies = registers(c, row.session_id, "pharmacies")
        depots = registers(c, row.session_id, "depots")
    allocations = run_allocations(engine, row.session_id, run)
    deliveries = run_deliveries(engine, row.session_id, run)
    _csv(allocations, out / "allocations.csv")
    _csv(deliveries, out / "deliveries.csv")
    _csv(session_rejections(engine, row.session_id), out / "rejections.csv")
    write_manifests(deliveries, pharmacies, depots, session, out / "manifests")
    summary = summarise(session, row, allocations, deliveries, depots)
    summary["emails"] = emails_summary(engine, run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def write_mail_copies(engine: Engine, run: int, folder: Path, sender: str) -> int:
    """A copy of each email of the run handed to an outside SMTP server, rebuilt from the stored run."""
    from pipeline.services.confirmations import confirmations
    from pipeline.adapters.mail.render import render
    from pipeline.adapters.mail.sink import save_message

    box = T["outbox"]
    with engine.connect() as c:
        row = c.execute(select(T["runs"]).where(T["runs"].c.id == run)).one()
        sent = read_frame(c, select(box).where(box.c.run_id == run, box.c.state == "sent").order_by(box.c.id))
        written = 0
        for start in range(0, len(sent), 500):
            for confirmation in confirmations(c, row, sent.iloc[start:start + 500], sender):
                save_message(folder, render(confirmation), overwrite=True)
                written += 1
    return written


def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def write_manifests(deliveries: pd.DataFrame, pharmacies: pd.DataFrame, depots: pd.DataFrame,
                    session: Session, folder: Path) -> None:
    """One dispatch file per wholesaler and depot: what each round carries, day by day."""
    scheduled = deliveries[deliveries["status"] == "scheduled"]
    box = scheduled["vaccine"].map({k: v.box_vials for k, v in session.vaccines.items()})
    lines = scheduled.assign(boxes=scheduled["vials"] // box,
                             officine=scheduled["finess"].map(pharmacies.set_index("finess")["name"]))
    rounds = (lines.groupby(["depot_id", "delivery_date", "finess", "officine", "vaccine"], as_index=False)
              [["vials", "boxes"]].sum())
    for depot in depots.itertuples():
        path = folder / slug(depot.wholesaler) / f"{depot.depot_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        _csv(rounds[rounds["depot_id"] == depot.depot_id][MANIFEST_COLUMNS], path)


def emails_summary(engine: Engine, run: int) -> dict:
    from pipeline.services.confirmations import outbox_counts

    counts = outbox_counts(engine, run)
    return {"sent": counts.get("sent", 0), "failed": counts.get("failed", 0), "unknown": counts.get("unknown", 0),
            "waiting": sum(n for state, n in counts.items() if state not in ("sent", "failed", "unknown"))}


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "wholesaler"


def summarise(session: Session, run, allocations: pd.DataFrame, deliveries: pd.DataFrame,
              depots: pd.DataFrame) -> dict:
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
        }
    scheduled = deliveries[deliveries["status"] == "scheduled"]
    use = scheduled.groupby(["depot_id", "delivery_date"])["vials"].sum()
    capacity = {}
    for (depot, day), vials in use.items():
        capacity.setdefault(depot, {})[day] = int(vials)
    pending = deliveries[deliveries["status"] == "pending"].groupby("depot_id")["vials"].sum()
    return {
        "session": session.id, "run": int(run.version), "operator": run.operator, "reason": run.reason,
        "vaccines": vaccines,
        "deliveries": {"capacity_used": capacity, "pending_vials_by_depot": {k: int(v) for k, v in pending.items()}},
    }
