"""RULES.md R1–R7 and R12 read literally, as a plain loop: the oracle the vectorised core and whole runs
are held to."""

from __future__ import annotations

from collections import Counter, defaultdict
from fractions import Fraction

from pipeline.domain.rules import NAMED_KINDS


def reference_allocate(rules, lines, officines, register, cancelled=(), supply=None, floors=None):
    """RULES.md R1–R7 and R12 read literally: a plain loop over lines in submission order. `floors`:
    vials a line keeps (R11, received before a policy change), served first from the supply.

    Returns {order_id: (requested, allocated, status, reason, capped)}.
    """
    officine = {row.finess: row for row in officines.itertuples()}
    professional = {row.rpps: row for row in register.itertuples()}
    nurses = Counter(row.finess for row in register.itertuples() if row.kind == "infirmier")
    cancelled = set(cancelled)
    queue = sorted(lines.itertuples(), key=lambda line: (line.submitted_at, line.order_id))

    outcome, kept, used = {}, {}, defaultdict(int)
    for line in queue:
        named = line.effector in NAMED_KINDS
        known_professional = named and line.rpps in professional and professional[line.rpps].kind == line.effector
        vaccine_rules = rules.vaccines.get(line.vaccine)
        checks = [
            ("cancelled", line.order_id in cancelled),
            ("window", not rules.opens <= line.submitted_at < rules.closes),
            ("unknown_pharmacy", line.finess not in officine),
            ("zone", line.finess in officine and not rules.in_zone(officine[line.finess].department)),
            ("eligibility", vaccine_rules is None or vaccine_rules.cap(line.effector, line.injection) is None),
            ("unknown_professional", named and not known_professional),
            ("not_attached", named and known_professional and professional[line.rpps].finess != line.finess),
        ]
        failed = [reason for reason, fails in checks if fails]
        if failed:
            outcome[line.order_id] = (line.vials, 0, "refused", failed[0], 0)
            continue
        cap = vaccine_rules.cap(line.effector, line.injection)
        if line.effector == "infirmier":
            cap *= nurses[line.finess]
        beneficiary = (line.rpps if named else line.finess, line.effector, line.vaccine, line.injection)
        after_cap = min(line.vials, max(cap - used[beneficiary], 0))
        capped = after_cap // vaccine_rules.box_vials * vaccine_rules.box_vials
        used[beneficiary] += capped
        kept[line.order_id] = (line, after_cap, capped)

    for key, vaccine_rules in rules.vaccines.items():
        box = vaccine_rules.box_vials
        limit = (supply or {}).get(key, vaccine_rules.supply_vials)
        wanting = [(line, capped // box) for line, _, capped in kept.values() if line.vaccine == key and capped > 0]
        kept_units = {line.order_id: min((floors or {}).get(line.order_id, 0) // box, units) for line, units in wanting}
        wanting = [(line, units - kept_units[line.order_id]) for line, units in wanting]
        served = {line.order_id: units for line, units in wanting}
        if limit is not None and sum(served.values()) > limit // box - sum(kept_units.values()):
            left = max(limit // box - sum(kept_units.values()), 0)
            if vaccine_rules.allocation == "pro_rata":
                total = sum(served.values())
                share = {order_id: Fraction(units * left, total) for order_id, units in served.items()}
                served = {order_id: int(value) for order_id, value in share.items()}
                rest = left - sum(served.values())
                ranked = sorted(range(len(wanting)), key=lambda i: -(share[wanting[i][0].order_id] % 1))
                for i in ranked[:rest]:
                    served[wanting[i][0].order_id] += 1
            else:
                sold_out = False
                for line, units in wanting:
                    fits = units <= left and not sold_out
                    if vaccine_rules.allocation == "fcfs" and vaccine_rules.remainders:
                        take = min(units, left)
                    else:
                        take = units if fits else 0
                        sold_out = sold_out or (not fits and vaccine_rules.allocation == "fcfs")
                    served[line.order_id] = take
                    left -= take
        for line, after_cap, capped in kept.values():
            if line.vaccine != key:
                continue
            given = (served.get(line.order_id, 0) + kept_units.get(line.order_id, 0)) * box
            reason = ("supply" if given < capped else "unit" if capped < after_cap
                      else "cap" if after_cap < line.vials else "ok")
            status = "served" if given == line.vials else "refused" if given == 0 else "partial"
            outcome[line.order_id] = (line.vials, given, status, reason, capped)
    return outcome
