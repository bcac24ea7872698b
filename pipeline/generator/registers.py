"""The scenario generator's registers: officines, depots and the professionals attached to them,
and each depot's capacity and one-day changes sized to the orders."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import numpy as np

from pipeline.domain.calendar import parse_weekdays

from .france import FIRST_NAMES, OFFICINE_NAMES, SURNAMES, WHOLESALERS

# Register habits (shares and probabilities, all synthetic).
# Register and ordering habits (shares and probabilities, all synthetic).
PROFESSIONAL_MIX = {"medecin": 0.45, "sage_femme": 0.13, "infirmier": 0.42}
PROFESSIONALS_PER_OFFICINE = (10, 0.42)  # binomial: 0 to 10 attached, about 4 on average
TRAVAIL_PER_OFFICINE = 5_000 / 20_500  # about 5,000 médecins du travail nationally
WEEKDAYS = (("Mon-Fri", 0.8), ("Mon,Wed,Fri", 0.15), ("Mon-Sat", 0.05))


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


def luhn(payloads: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit that an RPPS number carries."""
    payloads = payloads.astype(str)
    width = len(payloads[0]) if len(payloads) else 0
    digits = (np.frombuffer("".join(payloads).encode("ascii"), dtype=np.uint8).reshape(-1, width) - 48)[:, ::-1]
    digits = digits.astype(np.int64)
    digits[:, ::2] *= 2
    digits[digits > 9] -= 9
    check = (10 - digits.sum(axis=1) % 10) % 10
    return np.char.add(payloads, check.astype(str))


def officines(rng: np.random.Generator, n: int, codes: np.ndarray, population: np.ndarray) -> dict:
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


def depots(rng: np.random.Generator, n: int, codes: np.ndarray, zones: np.ndarray, population: np.ndarray) -> dict:
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


def serve(rng: np.random.Generator, department: np.ndarray, depot: dict, codes: np.ndarray,
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


def professionals(rng: np.random.Generator, officines: dict) -> dict:
    """RPPS register: 0-10 professionals per officine plus the médecins du travail, 11-digit RPPS from 10."""
    n_off = len(officines["finess"])
    officine = np.repeat(np.arange(n_off), rng.binomial(*PROFESSIONALS_PER_OFFICINE, size=n_off))
    kinds, shares = zip(*PROFESSIONAL_MIX.items())
    kind = np.array(kinds)[rng.choice(len(kinds), size=len(officine), p=shares)]
    n_travail = round(TRAVAIL_PER_OFFICINE * n_off)
    officine = np.concatenate([officine, rng.integers(n_off, size=n_travail)])
    kind = np.concatenate([kind, np.full(n_travail, "medecin_travail")])
    n = len(kind)
    rpps = luhn(_unique_numbers(rng, np.full(n, "10"), 10))
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


def _dates(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def capacities(rng: np.random.Generator, session: dict, depot: dict, officines: dict, lines: dict,
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


def depot_days(rng: np.random.Generator, session: dict, depot: dict) -> list[tuple[str, str, int]]:
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
