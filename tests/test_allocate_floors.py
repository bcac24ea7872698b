"""R7 under a policy changed by a reallocation (R11): what a line has received stays its own, the
vaccine's policy shares the rest of the supply."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from pipeline.domain.allocate import allocate
from tests.conftest import by_order, orders, pharmacies, professionals, session, vaccine

OFFICINES = [f"01000000{k}" for k in range(1, 7)]
PHARMACIES = pharmacies(*[(finess, "01") for finess in OFFICINES])
NOBODY = professionals()


def decided(policy: str, supply: int, wanted: list[int], floors: dict | None = None, box: int = 1):
    rules = session(janssen=vaccine({"pharmacien": {"first": 30}}, box=box, supply=supply, allocation=policy))
    lines = orders(*[{"finess": OFFICINES[k % len(OFFICINES)], "vials": vials} for k, vials in enumerate(wanted)])
    return by_order(allocate(rules, lines, PHARMACIES, NOBODY, floors=floors))


def test_r7_r11_a_line_that_received_vials_keeps_them_and_pro_rata_shares_the_rest():
    # 20 vials for 10 + 10 + 20: pro rata alone gives 5, 5, 10; the last line has received 12 already.
    assert [v[0] for v in decided("pro_rata", 20, [10, 10, 20]).values()] == [5, 5, 10]
    # It keeps its 12; the 8 left go pro rata to what each line still wants (10, 10, 8): 3, 3, 2.
    found = decided("pro_rata", 20, [10, 10, 20], {"A-003": 12})
    assert found == {"A-001": (3, "partial", "supply"), "A-002": (3, "partial", "supply"),
                     "A-003": (14, "partial", "supply")}


def test_r7_r11_first_come_first_served_serves_what_was_received_before_the_lines_still_waiting():
    assert decided("fcfs", 10, [10, 5], {"A-002": 5}) == {"A-001": (5, "partial", "supply"),
                                                           "A-002": (5, "served", "ok")}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["fcfs", "fcfs_fill", "pro_rata"]), st.integers(0, 120),
       st.lists(st.integers(1, 30), min_size=1, max_size=10), st.data())
def test_r7_r11_every_line_keeps_what_it_received_and_the_supply_is_used_as_before(policy, supply, wanted, data):
    plain = decided(policy, supply, wanted)
    assert decided(policy, supply, wanted, {}) == plain  # nothing received: the policy alone
    served = {order_id: allocated for order_id, (allocated, _, _) in plain.items()}
    received = {order_id: data.draw(st.integers(0, allocated), label=order_id)
                for order_id, allocated in served.items()}
    found = decided(policy, supply, wanted, received)
    for order_id, vials in received.items():
        assert found[order_id][0] >= vials
    assert sum(v[0] for v in found.values()) <= max(supply, sum(received.values()))
    if policy == "pro_rata" or (policy == "fcfs"):
        # Taking nothing back from anyone, a policy that serves whole supplies still serves all of it.
        assert sum(v[0] for v in found.values()) == min(supply, sum(min(w, 30) for w in wanted))
    if all(found[k][0] >= v for k, v in received.items()) and policy == "fcfs":
        assert found == plain  # first come, first served already gave each line what it received
