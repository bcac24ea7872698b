"""A run's digest: SHA-256 over the canonical form of its decisions and deliveries, so that a copy of
its files (summary.json, the report) can be checked against the database, and the database against a
run derived again from the session's frozen inputs (`vialflow verify`)."""

from __future__ import annotations

import hashlib

import pandas as pd

DIGEST_DECISIONS = ["order_id", "requested", "allocated", "status", "reason"]
DIGEST_DELIVERIES = ["order_id", "depot_id", "vaccine", "delivery_date", "vials", "status"]


def canonical_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """DIGEST_DECISIONS as text, one row per line, sorted by order_id: the same lines give the same
    frame whatever their order, their integer widths or their source (a database, a decision)."""
    frame = pd.DataFrame({name: _text(decisions[name]) for name in DIGEST_DECISIONS})
    return frame.sort_values("order_id", kind="stable").reset_index(drop=True)


def canonical_deliveries(deliveries: pd.DataFrame) -> pd.DataFrame:
    """DIGEST_DELIVERIES as text (a pending row's date empty), sorted by order_id, then its dated
    days in date order, then its pending remainder; a line's days are distinct, so the order is total."""
    frame = pd.DataFrame({name: _text(deliveries[name]) for name in DIGEST_DELIVERIES if name != "delivery_date"})
    dates = pd.to_datetime(deliveries["delivery_date"].reset_index(drop=True), errors="coerce")
    frame.insert(3, "delivery_date", dates.dt.strftime("%Y-%m-%d").fillna("").to_numpy())
    key = frame["delivery_date"].replace("", "9999-12-31")
    ordered = frame.assign(_key=key).sort_values(["order_id", "_key", "status", "depot_id"], kind="stable")
    return ordered.drop(columns="_key").reset_index(drop=True)


def run_digest(decisions: pd.DataFrame, deliveries: pd.DataFrame) -> str:
    """`sha256:<64 hex>` of the canonical decisions then the canonical deliveries, as CSV text:
    `decisions` needs DIGEST_DECISIONS, `deliveries` DIGEST_DELIVERIES."""
    digest = hashlib.sha256()
    for name, frame in (("decisions", canonical_decisions(decisions)),
                        ("deliveries", canonical_deliveries(deliveries))):
        digest.update(f"# {name}\n".encode())
        digest.update(frame.to_csv(index=False, lineterminator="\n").encode())
    return f"sha256:{digest.hexdigest()}"


def _text(column: pd.Series) -> list:
    """A column as text; integers stored as floats (a column with gaps) lose their `.0`."""
    values = column.reset_index(drop=True)
    if pd.api.types.is_float_dtype(values):
        values = values.astype("Int64")
    return values.astype(str).to_numpy()
