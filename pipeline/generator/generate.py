"""Synthetic national scenario (CONTRACT.md's folder) from a seed: registers, depots and orders of one session.

Every draw comes from numpy Generators seeded from `seed`, so the same seed and sizes give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import tomllib
import unicodedata
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from .france import DEPARTMENTS, FIRST_NAMES, OFFICINE_NAMES, SURNAMES, WHOLESALERS
from pipeline.adapters.files.scenario import HEADERS
from pipeline.domain.calendar import parse_weekdays

DEFAULT_SESSION = Path(__file__).resolve().parents[2] / "fixtures" / "2021-06-14" / "session.toml"


# Register and ordering habits (shares and probabilities, all synthetic).
PROFESSIONAL_MIX = {"medecin": 0.45, "sage_femme": 0.13, "infirmier": 0.42}
PROFESSIONALS_PER_OFFICINE = (10, 0.42)  # binomial: 0 to 10 attached, about 4 on average
TRAVAIL_PER_OFFICINE = 5_000 / 20_500  # about 5,000 médecins du travail nationally
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
WEEKDAYS = (("Mon-Fri", 0.8), ("Mon,Wed,Fri", 0.15), ("Mon-Sat", 0.05))
BAD_ROWS = (
    ("submitted_at", "15/06/2021 10:12"), ("vials", "7.5"), ("vaccine", "sputnik"), ("missing", 5),
    ("duplicate", None), ("submitted_at", "2021-06-31T10:15:00.000+02:00"), ("vials", "douze"),
    ("vaccine", ""), ("submitted_at", "2021-06-14T10:12:00.000"), ("vaccine", "pfizer"), ("vials", "0"),
    ("missing", 3),
)


def generate_scenario(out: Path, *, seed: int = 1, pharmacies: int = 20_500, depots: int = 185,
                      session_toml: Path | None = None, bad_rows: int = 8) -> dict:
    """Write a scenario folder to `out` (the session file, registers, depots and orders) and return its counts."""
    if pharmacies < 1 or depots < 1 or bad_rows < 0:
        raise ValueError("pharmacies and depots must be positive, bad_rows not negative")
    out = Path(out)
    text = Path(session_toml or DEFAULT_SESSION).read_text(encoding="utf-8")
    session = tomllib.loads(text)
    # one independent stream per part, so a change in one part leaves the others' draws alone
    rng = dict(zip(("officines", "depots", "professionals", "orders", "supply", "days", "rows"),
                   (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7))))
    codes = np.array([d[0] for d in DEPARTMENTS])
    zones = np.array([d[1] for d in DEPARTMENTS])
    population = np.array([d[2] for d in DEPARTMENTS], dtype=float)

    officines = _officines(rng["officines"], pharmacies, codes, population)
    depot = _depots(rng["depots"], depots, codes, zones, population)
    officines["depot_id"] = _serve(rng["depots"], officines["department"], depot, codes, zones)
    pros = _professionals(rng["professionals"], officines)
    lines = _orders(rng["orders"], session, officines, pros)
    supply, demand = _supply(rng["supply"], session, lines)
    depot["capacity_vials"] = _capacities(rng["depots"], session, depot, officines, lines, supply, demand)
    days = _depot_days(rng["days"], session, depot)
    rows = _order_rows(rng["rows"], session, lines, bad_rows)
    bad_rows = len(rows) - len(lines["vials"])  # none when there is no order to spoil

    out.mkdir(parents=True, exist_ok=True)
    (out / "session.toml").write_text(_with_supply(text, supply, demand), encoding="utf-8")
    _write_csv(out / "pharmacies.csv", zip(officines["finess"], officines["name"], officines["email"],
                                            officines["department"], officines["depot_id"]))
    _write_csv(out / "professionals.csv", zip(pros["rpps"], pros["kind"], pros["name"], pros["email"],
                                               officines["finess"][pros["officine"]]))
    _write_csv(out / "depots.csv", zip(depot["depot_id"], depot["wholesaler"], depot["name"],
                                       depot["capacity_vials"], depot["weekdays"]))
    _write_csv(out / "depot_days.csv", days)
    with open(out / "orders.csv", "w", encoding="utf-8", newline="") as f:
        f.write("\n".join([",".join(HEADERS["orders.csv"]), *rows]) + "\n")
    return {
        "pharmacies": len(officines["finess"]),
        "professionals": len(pros["rpps"]),
        "medecin_travail": int((pros["kind"] == "medecin_travail").sum()),
        "depots": len(depot["depot_id"]),
        "depot_days": len(days),
        "order_lines": len(rows) - bad_rows,
        "bad_rows": bad_rows,
        "demand_vials": demand,
        "supply_vials": supply,
    }


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADERS[path.name])
        writer.writerows(rows)


def _apportion(total: int, weights: np.ndarray, room: np.ndarray, what: str) -> np.ndarray:
    """Largest-remainder apportionment of `total` units in proportion to `weights`, at most `room` each."""
    alloc = np.zeros(len(weights), dtype=np.int64)
    while (left := total - int(alloc.sum())) > 0:
        free = room - alloc
        w = np.where(free > 0, weights, 0.0)
        if w.sum() == 0:
            raise ValueError(f"cannot place {total} {what}: there is room for {int(room.sum())}")
        quota = left * w / w.sum()
        add = np.minimum(np.floor(quota).astype(np.int64), free)
        if add.sum() == 0:  # the last units go to the largest remainders, ties to the first
            order = np.argsort(-(quota - np.floor(quota)), kind="stable")
            add[order[free[order] > 0][:left]] = 1
        alloc += add
    return alloc


def _fold(name: str) -> str:
    """An email-safe form of a French name: `Le Goff` -> `legoff`, `Élodie` -> `elodie`."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z-]", "", plain.lower())


def _unique_numbers(rng: np.random.Generator, prefixes: np.ndarray, width: int) -> np.ndarray:
    """Distinct digit strings of `width` characters, each starting with its prefix (leading zeros kept)."""
    n = len(prefixes)
    result = np.empty(n, dtype=object)
    todo = np.arange(n)
    while len(todo):
        free = width - np.char.str_len(prefixes[todo].astype(str))
        draws = rng.integers(10 ** free.astype(np.int64))
        result[todo] = [p + str(d).zfill(k) for p, d, k in zip(prefixes[todo].tolist(), draws.tolist(), free.tolist())]
        _, first = np.unique(result.astype(str), return_index=True)
        repeated = np.ones(n, dtype=bool)
        repeated[first] = False
        todo = np.flatnonzero(repeated)
    return result.astype(str)


def _luhn(payloads: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit that an RPPS number carries."""
    payloads = payloads.astype(str)
    width = len(payloads[0]) if len(payloads) else 0
    digits = (np.frombuffer("".join(payloads).encode("ascii"), dtype=np.uint8).reshape(-1, width) - 48)[:, ::-1]
    digits = digits.astype(np.int64)
    digits[:, ::2] *= 2
    digits[digits > 9] -= 9
    check = (10 - digits.sum(axis=1) % 10) % 10
    return np.char.add(payloads, check.astype(str))


def _officines(rng: np.random.Generator, n: int, codes: np.ndarray, population: np.ndarray) -> dict:
    """FINESS register: department-prefixed 9-digit ids (Corsica as 20, overseas as 97x), sorted by FINESS."""
    floor = 1 if n >= len(codes) else 0  # small scenarios still cover every department, Corsica included
    per_department = floor + _apportion(n - floor * len(codes), population, np.full(len(codes), n), "officines")
    department = np.repeat(codes, per_department)
    prefix = np.where(np.isin(department, ["2A", "2B"]), "20", department)
    finess = _unique_numbers(rng, prefix, 9)
    order = np.argsort(finess, kind="stable")
    finess, department = finess[order], department[order]
    surname = rng.integers(len(SURNAMES), size=(n, 2))
    shop = rng.integers(len(OFFICINE_NAMES), size=n)
    selarl = rng.random(n) < 0.05
    name = [f"SELARL Pharmacie {SURNAMES[a]}, {SURNAMES[b]} et associés" if sel else f"{OFFICINE_NAMES[k]} {SURNAMES[a]}"
            for (a, b), k, sel in zip(surname.tolist(), shop.tolist(), selarl.tolist())]
    return {"finess": finess, "department": department, "name": np.array(name),
            "email": np.char.add(np.char.add("officine.", finess), "@pharma.example.fr")}


def _depots(rng: np.random.Generator, n: int, codes: np.ndarray, zones: np.ndarray, population: np.ndarray) -> dict:
    """Depots of the seven wholesalers spread like the population, at most one per wholesaler and department."""
    serves = np.array([[w[3] is None or z in w[3] for w in WHOLESALERS] for z in zones])
    per_department = _apportion(n, population, serves.sum(axis=1), "depots (one per wholesaler and department)")
    zone_names = list(dict.fromkeys(zones))
    if n >= len(zone_names):  # every zone gets a depot, taken from the best-served zone that can spare one
        for zone in zone_names:
            in_zone = np.flatnonzero(zones == zone)
            if per_department[in_zone].sum() == 0:
                zone_total = {z: per_department[zones == z].sum() for z in zone_names}
                spare = [(per_department[d], -d) for d in range(len(zones))
                         if per_department[d] and zone_total[zones[d]] > 1]
                per_department[-max(spare)[1]] -= 1
                per_department[in_zone[np.argmax(population[in_zone])]] += 1
    weight = np.array([w[2] for w in WHOLESALERS])
    rows = []
    for d in np.flatnonzero(per_department):
        p = weight * serves[d]
        for w in sorted(rng.choice(len(WHOLESALERS), size=int(per_department[d]), replace=False, p=p / p.sum())):
            rows.append((f"D-{WHOLESALERS[w][0]}-{codes[d]}", WHOLESALERS[w][1], codes[d], zones[d]))
    specs, shares = zip(*WEEKDAYS)
    depot_id, wholesaler, department, zone = (np.array(c) for c in zip(*rows))
    return {"depot_id": depot_id, "wholesaler": wholesaler, "department": department, "zone": zone,
            "name": np.array([f"{w}, dépôt {d}" for w, d in zip(wholesaler, department)]),
            "weekdays": np.array(specs)[rng.choice(len(specs), size=len(rows), p=shares)]}


def _serve(rng: np.random.Generator, department: np.ndarray, depot: dict, codes: np.ndarray,
           zones: np.ndarray) -> np.ndarray:
    """Each officine's depot: one of its department's (nine in ten), else one of its zone's, else any."""
    served = np.empty(len(department), dtype=object)
    for code, zone in zip(codes, zones):
        idx = np.flatnonzero(department == code)
        if not len(idx):
            continue
        local = np.flatnonzero(depot["department"] == code)
        near = np.flatnonzero(depot["zone"] == zone)
        near = near if len(near) else np.arange(len(depot["depot_id"]))
        pick = near[rng.integers(len(near), size=len(idx))]
        if len(local):
            pick = np.where(rng.random(len(idx)) < 0.9, local[rng.integers(len(local), size=len(idx))], pick)
        served[idx] = depot["depot_id"][pick]
    return served.astype(str)


def _professionals(rng: np.random.Generator, officines: dict) -> dict:
    """RPPS register: 0-10 professionals per officine plus the médecins du travail, 11-digit RPPS from 10."""
    n_off = len(officines["finess"])
    officine = np.repeat(np.arange(n_off), rng.binomial(*PROFESSIONALS_PER_OFFICINE, size=n_off))
    kinds, shares = zip(*PROFESSIONAL_MIX.items())
    kind = np.array(kinds)[rng.choice(len(kinds), size=len(officine), p=shares)]
    n_travail = round(TRAVAIL_PER_OFFICINE * n_off)
    officine = np.concatenate([officine, rng.integers(n_off, size=n_travail)])
    kind = np.concatenate([kind, np.full(n_travail, "medecin_travail")])
    n = len(kind)
    rpps = _luhn(_unique_numbers(rng, np.full(n, "10"), 10))
    rank = {k: i for i, k in enumerate(("medecin", "sage_femme", "medecin_travail", "infirmier"))}
    order = np.lexsort((rpps, np.array([rank[k] for k in kind.tolist()]), officine))
    officine, kind, rpps = officine[order], kind[order], rpps[order]
    first = rng.integers(len(FIRST_NAMES), size=n)
    last = rng.integers(len(SURNAMES), size=n)
    doctor = np.isin(kind, ["medecin", "medecin_travail"])
    first, last = first.tolist(), last.tolist()
    name = [("Dr " if t else "") + f"{FIRST_NAMES[f]} {SURNAMES[s]}" for t, f, s in zip(doctor.tolist(), first, last)]
    folded_first, folded_last = [_fold(x) for x in FIRST_NAMES], [_fold(x) for x in SURNAMES]
    email, seen = [], set()
    for f, s, r in zip(first, last, rpps.tolist()):
        address = f"{folded_first[f]}.{folded_last[s]}.{r[-4:]}@sante.example.fr"
        if address in seen:  # a namesake with the same last digits: the full RPPS tells them apart
            address = f"{folded_first[f]}.{folded_last[s]}.{r}@sante.example.fr"
        seen.add(address)
        email.append(address)
    return {"rpps": rpps, "kind": kind, "name": np.array(name), "email": np.array(email), "officine": officine}


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


def _orders(rng: np.random.Generator, session: dict, officines: dict, pros: dict) -> dict:
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
                    candidate = str(_luhn(np.array([f"10{int(rng.integers(10**8)):08d}"]))[0])
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


def _supply(rng: np.random.Generator, session: dict, lines: dict) -> tuple[dict, dict]:
    """For each vaccine the session limits: its demand (capped, in whole units) and a supply of 35-48 % of it."""
    supply, demand = {}, {}
    for key, v in session["vaccines"].items():
        if "supply_vials" in v:
            box = v.get("box_vials", 1)
            demand[key] = int(lines["est"][lines["vaccine"] == key].sum())
            supply[key] = int(demand[key] * rng.uniform(*SUPPLY_SHARE)) // box * box
    return supply, demand


def _with_supply(text: str, supply: dict, demand: dict) -> str:
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


def _dates(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def _capacities(rng: np.random.Generator, session: dict, depot: dict, officines: dict, lines: dict,
                supply: dict, demand: dict) -> np.ndarray:
    """Vials per delivery day: each depot's tightest need over the delivery windows (a Hall bound) times
    a factor of 0.7-1.4, so that some depots are short and keep vials pending (R8)."""
    vaccines = session["vaccines"]
    windows = {k: (dt.date.fromisoformat(str(v["deliver_from"])), dt.date.fromisoformat(str(v["deliver_by"])))
               for k, v in vaccines.items()}
    scale = {k: (supply[k] / demand[k] if demand.get(k) else 0.0) if k in supply else 1.0 for k in vaccines}
    position = {d: i for i, d in enumerate(depot["depot_id"])}
    line_depot = np.array([position[d] for d in officines["depot_id"]])[lines["officine"]]
    load = {k: np.bincount(line_depot, weights=lines["est"] * (lines["vaccine"] == k) * scale[k],
                           minlength=len(position)) for k in vaccines}
    need = np.zeros(len(position))
    for start in sorted({w[0] for w in windows.values()}):
        for end in sorted({w[1] for w in windows.values()}):
            inside = [k for k, (a, b) in windows.items() if start <= a and b <= end]
            if end < start or not inside:
                continue
            span = _dates(start, end)
            days = np.array([sum(d.weekday() in parse_weekdays(spec) for d in span) for spec in depot["weekdays"]])
            need = np.maximum(need, sum(load[k] for k in inside) / np.maximum(days, 1))
    return np.maximum(10, np.ceil(need * rng.uniform(0.7, 1.4, size=len(need)))).astype(np.int64)


def _depot_days(rng: np.random.Generator, session: dict, depot: dict) -> list[tuple[str, str, int]]:
    """A few one-day changes: closed delivery days, exceptional openings, halved capacities."""
    vaccines = session["vaccines"].values()
    span = _dates(min(dt.date.fromisoformat(str(v["deliver_from"])) for v in vaccines),
                  max(dt.date.fromisoformat(str(v["deliver_by"])) for v in vaccines))
    n = min(len(depot["depot_id"]), max(2, len(depot["depot_id"]) // 20))
    rows = []
    for k, j in enumerate(rng.choice(len(depot["depot_id"]), size=n, replace=False)):
        usual = parse_weekdays(depot["weekdays"][j])
        open_days = [d for d in span if d.weekday() in usual]
        shut_days = [d for d in span if d.weekday() not in usual and d.weekday() < 6]
        capacity = int(depot["capacity_vials"][j])
        if k % 3 == 1 and shut_days:  # an exceptional delivery day
            rows.append((depot["depot_id"][j], shut_days[int(rng.integers(len(shut_days)))], capacity))
        elif k % 3 == 2 and open_days:  # half the usual capacity
            rows.append((depot["depot_id"][j], open_days[int(rng.integers(len(open_days)))], capacity // 2))
        elif open_days:  # closed
            rows.append((depot["depot_id"][j], open_days[int(rng.integers(len(open_days)))], 0))
    return [(d, day.isoformat(), c) for d, day, c in sorted(rows)]


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


def _order_rows(rng: np.random.Generator, session: dict, lines: dict, bad_rows: int) -> list[str]:
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
