"""What changed between two versions of a run (R11): the lines, their deliveries and the vials per vaccine."""

from __future__ import annotations

import pandas as pd

from .outbox import line_states


def differences(old_lines: pd.DataFrame, old_deliveries: pd.DataFrame, new_lines: pd.DataFrame,
                new_deliveries: pd.DataFrame) -> dict:
    """Between two versions of a run (each its lines and deliveries, as the read model gives them):
    `lines`, the lines whose allocation, reason or deliveries changed, sorted by order_id, with
    allocated and reason before and after; `deliveries`, their days before and after where those moved;
    `vials`, the vials allocated per vaccine before and after."""
    was = line_states(old_lines, old_deliveries).set_index("order_id")["state"]
    now = line_states(new_lines, new_deliveries).set_index("order_id")["state"]
    changed = sorted(now.index[now != was.reindex(now.index)])
    before, after = old_lines.set_index("order_id"), new_lines.set_index("order_id")
    lines = [{"order_id": k, "allocated_before": int(before.at[k, "allocated"]),
              "allocated_after": int(after.at[k, "allocated"]), "reason_before": before.at[k, "reason"],
              "reason_after": after.at[k, "reason"]} for k in changed]
    days_before, days_after = _days(old_deliveries, changed), _days(new_deliveries, changed)
    moved = [{"order_id": k, "before": days_before.get(k, []), "after": days_after.get(k, [])} for k in changed
             if days_before.get(k, []) != days_after.get(k, [])]
    vials = {key: {"before": int(before.loc[before["vaccine"] == key, "allocated"].sum()),
                   "after": int(after.loc[after["vaccine"] == key, "allocated"].sum())}
             for key in dict.fromkeys([*old_lines["vaccine"], *new_lines["vaccine"]])}
    return {"lines": lines, "vials": vials, "deliveries": moved}


def _days(deliveries: pd.DataFrame, order_ids: list[str]) -> dict[str, list[dict]]:
    """These lines' deliveries, each line's dated days in date order, then its pending vials."""
    mine = deliveries[deliveries["order_id"].isin(order_ids)]
    found: dict[str, list[dict]] = {}
    for order_id, day, vials in zip(mine["order_id"], mine["delivery_date"], mine["vials"]):
        found.setdefault(order_id, []).append({"date": None if day is None else day.isoformat(), "vials": int(vials)})
    return {k: sorted(v, key=lambda x: (x["date"] is None, x["date"] or "")) for k, v in found.items()}
