"""The scenario generator's order lines: who orders what and when, the refusals slipped in, the supply
of each limited vaccine, and the rows of orders.csv as a portal would export them."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from zoneinfo import ZoneInfo

import numpy as np

from pipeline.adapters.files.scenario import HEADERS

from .registers import PROFESSIONAL_MIX, luhn

# Ordering habits (shares and probabilities, all synthetic).
ORDERING_OFFICINES = 0.88
ORDER_PROBABILITY = {"pharmacien": 0.55, "infirmier": 0.55, "medecin": 0.35, "sage_femme": 0.4, "medecin_travail": 0.93}
EXTRA_LINE = {"pharmacien": 0.3, "infirmier": 0.25, "medecin": 0.15, "sage_femme": 0.12, "medecin_travail": 0.03}
NAMED = ("medecin", "medecin_travail", "sage_femme")
# Cumulative shares of lines turned into each refusal, checked in this order.
PERTURBATIONS = (("eligibility", 0.006), ("unknown_professional", 0.009), ("not_attached", 0.012),
                 ("unknown_pharmacy", 0.014), ("window", 0.019))
# Relative activity on the portal per local hour of the day.
HOURLY_ACTIVITY = (0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.05, 0.2, 1.6, 1.5, 1.3, 1.1,
                   0.7, 0.8, 1.1, 1.0, 0.9, 0.9, 0.8, 0.6, 0.5, 0.5, 0.4, 0.15)
SUPPLY_SHARE = (0.35, 0.48)  # supply of a limited vaccine, as a share of its capped demand
BAD_ROWS = (
    ("submitted_at", "15/06/2021 10:12"), ("vials", "7.5"), ("vaccine", "sputnik"), ("missing", 5),
    ("duplicate", None), ("submitted_at", "2021-06-31T10:15:00.000+02:00"), ("vials", "douze"),
    ("vaccine", ""), ("submitted_at", "2021-06-14T10:12:00.000"), ("vaccine", "pfizer"), ("vials", "0"),
    ("missing", 3),
)


def _options(session: dict, kind: str) -> list[tuple[str, str, int, int]]:
    """(vaccine, injection, cap, box) open to a kind in the session (R3, R4, R6)."""
    return [(key, injection, cap, v.get("box_vials", 1))
            for key, v in session["vaccines"].items()
            for injection, cap in v.get("caps", {}).get(kind, {}).items()]


def _closed(session: dict, kind: str) -> list[tuple[str, str]]:
    """(vaccine, injection) pairs not open to a kind: what an eligibility refusal looks like."""
    opened = [(o[0], o[1]) for o in _options(session, kind)]
    return [(key, inj) for key in session["vaccines"] for inj in ("first", "second") if (key, inj) not in opened]


def _vials(rng: np.random.Generator, cap: np.ndarray, box: int) -> np.ndarray:
    """Requested vials: mostly within the cap, often exactly it, sometimes over (R4) or not whole boxes (R6)."""
    n = len(cap)
    if box > 1:  # one box each, as the notice says, and a few mistakes
        choices = np.stack([cap, 2 * cap, cap + box // 2, np.full(n, max(box // 2, 1))])
        return choices[rng.choice(4, size=n, p=(0.92, 0.03, 0.02, 0.03)), np.arange(n)]
    u = rng.random(n)
    within = 1 + (rng.random(n) * cap).astype(np.int64)
    over = cap + 1 + (rng.random(n) * cap).astype(np.int64)
    return np.where(u < 0.25, cap, np.where(u < 0.92, within, over))


def order_lines(rng: np.random.Generator, session: dict, officines: dict, pros: dict) -> dict:
    """Order lines as column arrays; `est` is what a line could get after its cap and unit (0 for a refusal)."""
    n_off = len(officines["finess"])
    nurses = np.bincount(pros["officine"][pros["kind"] == "infirmier"], minlength=n_off)
    active = rng.random(n_off) < ORDERING_OFFICINES
    parts = []
    for kind in ("pharmacien", "infirmier", "medecin", "sage_femme", "medecin_travail"):
        if kind in NAMED:
            who = np.flatnonzero(pros["kind"] == kind)
            officine, pool = pros["officine"][who], np.ones(len(who), dtype=np.int64)
            p = np.full(len(who), ORDER_PROBABILITY[kind])
        else:
            who, officine = np.full(n_off, -1), np.arange(n_off)
            pool = nurses if kind == "infirmier" else np.ones(n_off, dtype=np.int64)
            # an officine without nurses now and then orders for "its" nurses: refused by R5
            p = np.where(active, np.where(pool > 0, ORDER_PROBABILITY[kind], 0.02), 0.0)
        for vaccine, injection, cap, box in _options(session, kind):
            count = (rng.random(len(who)) < p) * (1 + rng.binomial(2, EXTRA_LINE[kind], size=len(who)))
            take = np.repeat(np.arange(len(who)), count)
            limit = cap * np.maximum(pool[take], 1)
            vials = _vials(rng, limit, box)
            # a beneficiary's later lines are top-ups: smaller than a first order
            later = np.arange(len(take)) - np.repeat(np.cumsum(count) - count, count) > 0
            top_up = 1 + (rng.random(len(take)) * np.maximum(limit // 2, 1)).astype(np.int64)
            vials = np.where(later & (box == 1), top_up, vials)
            parts.append({"officine": officine[take], "pro": who[take], "effector": np.full(len(take), kind),
                          "vaccine": np.full(len(take), vaccine), "injection": np.full(len(take), injection),
                          "vials": vials, "est": np.minimum(vials, cap * pool[take]) // box * box})
    lines = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    for k in ("effector", "vaccine", "injection"):  # edited in place below: no fixed-width strings
        lines[k] = lines[k].astype(object)
    lines["finess"] = officines["finess"][lines["officine"]].astype(object)
    lines["rpps"] = np.where(lines["pro"] >= 0, pros["rpps"][np.maximum(lines["pro"], 0)], "").astype(object)
    limited = [key for key, v in session["vaccines"].items() if "supply_vials" in v]
    lines["ms"] = _submission_ms(rng, session, np.isin(lines["vaccine"].astype(str), limited))
    _perturb(rng, session, lines, officines, pros)
    return lines


def _window(session: dict) -> tuple[int, int, ZoneInfo]:
    """opens_at and closes_at as epoch milliseconds, and the session's time zone."""
    tz = ZoneInfo(session["timezone"])
    opens, closes = (dt.datetime.fromisoformat(str(session[k])).replace(tzinfo=tz) for k in ("opens_at", "closes_at"))
    return int(opens.timestamp()) * 1000, int(closes.timestamp()) * 1000, tz


def _submission_ms(rng: np.random.Generator, session: dict, rush: np.ndarray) -> np.ndarray:
    """Instants (epoch ms) in the window: office hours, and a rush at opening for vaccines in short supply."""
    opens, closes, tz = _window(session)
    minutes = (closes - opens) // 60_000
    start = dt.datetime.fromtimestamp(opens / 1000, tz)
    weight = np.array(HOURLY_ACTIVITY)[(start.hour * 60 + start.minute + np.arange(minutes)) // 60 % 24]
    n = len(rush)
    spread = rng.choice(minutes, size=n, p=weight / weight.sum()) * 60_000 + rng.integers(60_000, size=n)
    burst = np.minimum(rng.exponential(6 * 60_000, size=n).astype(np.int64), closes - opens - 1)
    burst = np.where(rng.random(n) < 0.05, burst // 1000 * 1000, burst)  # retries on the second: exact ties
    return opens + np.where(rush & (rng.random(n) < 0.45), burst, spread)


def _perturb(rng: np.random.Generator, session: dict, lines: dict, officines: dict, pros: dict) -> None:
    """Turn a small share of lines into refusals: eligibility, unknown professional, not attached,
    unknown officine, window (in place; their `est` becomes 0)."""
    opens, closes, _ = _window(session)
    u = rng.random(len(lines["vials"]))
    named = np.isin(lines["effector"].astype(str), NAMED)
    closed = {k: _closed(session, k) for k in ("pharmacien", *PROFESSIONAL_MIX, "medecin_travail")}
    other_kind = {k: np.flatnonzero(pros["kind"] != k) for k in NAMED}
    registered_rpps, registered_finess = set(pros["rpps"]), set(officines["finess"])
    n_off, low = len(officines["finess"]), 0.0
    for reason, high in PERTURBATIONS:
        idx = np.flatnonzero((u >= low) & (u < high))
        low = high
        if reason in ("unknown_professional", "not_attached"):
            idx = idx[named[idx]]
        if reason == "not_attached" and n_off < 2:
            continue
        lines["est"][idx] = 0
        for i in idx:
            if reason == "eligibility" and closed[lines["effector"][i]]:
                pairs = closed[lines["effector"][i]]
                lines["vaccine"][i], lines["injection"][i] = pairs[int(rng.integers(len(pairs)))]
            elif reason == "unknown_professional":  # not in the register, another kind's, or missing
                how = rng.random()
                if how < 0.6:
                    candidate = str(luhn(np.array([f"10{int(rng.integers(10**8)):08d}"]))[0])
                    lines["rpps"][i] = "" if candidate in registered_rpps else candidate
                elif how < 0.85:
                    others = other_kind[lines["effector"][i]]
                    lines["rpps"][i] = pros["rpps"][others[int(rng.integers(len(others)))]] if len(others) else ""
                else:
                    lines["rpps"][i] = ""
            elif reason == "not_attached":
                lines["finess"][i] = officines["finess"][(lines["officine"][i] + int(rng.integers(1, n_off))) % n_off]
            elif reason == "unknown_pharmacy":
                candidate = lines["finess"][i][:3] + f"{int(rng.integers(10**6)):06d}"
                lines["finess"][i] = "999999999" if candidate in registered_finess else candidate
            elif reason == "window":
                early = rng.random() < 0.5
                lines["ms"][i] = opens - 1 - int(rng.integers(3 * 3_600_000)) if early else closes + int(rng.integers(2 * 3_600_000))
        if reason == "window" and len(idx):
            lines["ms"][idx[0]] = closes  # closes_at itself is outside (R1)
    valid = np.flatnonzero(lines["est"] > 0)
    if len(valid):
        lines["ms"][valid[int(rng.integers(len(valid)))]] = opens  # and opens_at itself inside


def supply_and_demand(rng: np.random.Generator, session: dict, lines: dict) -> tuple[dict, dict]:
    """For each vaccine the session limits: its demand (capped, in whole units) and a supply of 35-48 % of it."""
    supply, demand = {}, {}
    for key, v in session["vaccines"].items():
        if "supply_vials" in v:
            box = v.get("box_vials", 1)
            demand[key] = int(lines["est"][lines["vaccine"] == key].sum())
            supply[key] = int(demand[key] * rng.uniform(*SUPPLY_SHARE)) // box * box
    return supply, demand


def with_supply(text: str, supply: dict, demand: dict) -> str:
    """The session file's text with each limited vaccine's supply_vials line replaced."""
    section, out = None, []
    for line in text.splitlines(keepends=True):
        header = re.match(r"\s*\[\s*vaccines\.([A-Za-z0-9_-]+)\s*\]", line)
        if line.lstrip().startswith("["):
            section = header.group(1) if header else None
        elif section in supply and re.match(r"\s*supply_vials\s*=", line):
            share = supply[section] / demand[section] if demand[section] else 0
            line = (f"supply_vials = {supply[section]}  # generated: {share:.0%} of the "
                    f"{demand[section]} vials ordered within the caps\n")
        out.append(line)
    result = "".join(out)
    written = tomllib.loads(result)["vaccines"]
    for key, vials in supply.items():
        if written[key].get("supply_vials") != vials:
            raise ValueError(f"session file: cannot rewrite supply_vials of [vaccines.{key}] (write it on its own line)")
    return result


def _iso(ms: np.ndarray, tz: ZoneInfo, utc: np.ndarray) -> np.ndarray:
    """ISO 8601 with milliseconds and the session's offset (+00:00 where `utc`)."""
    hours, inverse = np.unique(ms // 3_600_000, return_inverse=True)
    offset = np.array([int(dt.datetime.fromtimestamp(int(h) * 3600, tz).utcoffset().total_seconds()) * 1000
                       for h in hours], dtype=np.int64)[inverse]
    offset = np.where(utc, 0, offset)
    text = np.datetime_as_string((ms + offset).astype("datetime64[ms]"), unit="ms").astype(str)
    minutes = np.abs(offset) // 60_000
    sign = np.where(offset < 0, "-", "+")
    suffix = np.char.add(np.char.add(sign, np.char.zfill((minutes // 60).astype(str), 2)),
                         np.char.add(":", np.char.zfill((minutes % 60).astype(str), 2)))
    return np.char.add(text, suffix)


def order_rows(rng: np.random.Generator, session: dict, lines: dict, bad_rows: int) -> list[str]:
    """orders.csv rows grouped by officine, as a portal export, with `bad_rows` unreadable rows slipped in."""
    n = len(lines["vials"])
    width = max(7, len(str(20 * (n + bad_rows))))
    ids = np.array([f"A-{x:0{width}d}" for x in rng.choice(10**width, size=n + bad_rows, replace=False)])
    order_id, spare = ids[:n], list(ids[n:])
    stamp = _iso(lines["ms"], _window(session)[2], rng.random(n) < 0.0005)  # a few written in UTC by another client
    columns = [order_id, stamp, lines["finess"].astype(str), lines["effector"].astype(str),
               lines["rpps"].astype(str), lines["vaccine"].astype(str), lines["injection"].astype(str),
               lines["vials"].astype(str)]
    order = np.lexsort((order_id, lines["ms"], columns[2]))
    rows = [",".join(r) for r in zip(*(c[order].tolist() for c in columns))]
    bad: list[tuple[int, str]] = []
    for k in range(bad_rows if rows else 0):
        what, value = BAD_ROWS[k % len(BAD_ROWS)]
        at = int(rng.integers(len(rows)))
        if what == "duplicate":  # the same order sent again a little later: the later row is not an order
            bad.append((min(at + 1 + int(rng.integers(20)), len(rows)), rows[at]))
            continue
        row = rows[at].split(",")
        if what == "vaccine" and value:  # a key the session does not have, whatever the session
            value = next(v for v in (value, "sputnik", "novavax", "valneva", "curevac") if v not in session["vaccines"])
        row[0] = spare.pop()
        if what == "missing":
            row = row[:value]
        else:
            row[HEADERS["orders.csv"].index(what)] = value
        bad.append((at, ",".join(row)))
    for at, row in sorted(bad, key=lambda b: b[0], reverse=True):
        rows.insert(at, row)
    return rows
