"""Fuzz targets for the entry files: orders.csv, the registers, session.toml and a changes file.

Each check writes the mutated file into a fresh copy of tests/conformance/notice-small (its own
temporary folder, removed after) and reads it the way a run does. The reader must either read it
(and what it read must fit the database columns) or stop with one ScenarioError line.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from pipeline.adapters.db import tables
from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import ScenarioError, load_scenario
from pipeline.domain.identifiers import CONTROL
from tests.fuzz import Target, mutate_bytes

SOURCE = Path(__file__).resolve().parents[1] / "conformance" / "notice-small"
REGISTERS = ("pharmacies.csv", "professionals.csv", "depots.csv", "depot_days.csv")
CHANGES = b"""effective = "2021-06-22"
supply = { moderna = 45000, janssen = 1200 }
cancel = ["A-493905", "A-583468"]
[[depot_days]]
depot_id = "D-ALL-43"
date = "2021-06-22"
capacity_vials = 0
[[redistribution]]
order_id = "A-647406"
vials = 3
to_rpps = "10233323480"
"""
# Which database column each frame's text column goes to: its length is the limit to respect.
_COLUMNS = {"pharmacies": tables.Pharmacy, "professionals": tables.Professional, "depots": tables.Depot,
            "depot_days": tables.DepotDay, "orders": tables.Order, "rejections": tables.Rejection}


def _read(name: str) -> bytes:
    return (SOURCE / name).read_bytes()


def _load(name: str, data: bytes):
    """load_scenario on notice-small with `name` replaced by `data`, in a folder of its own."""
    with tempfile.TemporaryDirectory(prefix="vialflow-fuzz-") as tmp:
        folder = Path(tmp) / "scenario"
        shutil.copytree(SOURCE, folder, ignore=shutil.ignore_patterns("expected"))
        (folder / name).write_bytes(data)
        return _outcome(lambda: load_scenario(folder))


def _outcome(read):
    """What `read` returns, or None when it stopped with a proper one-line ScenarioError."""
    try:
        return read()
    except ScenarioError as error:
        message = str(error)
        assert message and len(message) < 500 and not re.search(CONTROL, message), f"not one clean line: {message!r}"
        return None


def _storable(scenario) -> None:
    """Every text cell fits its column of tables.py and holds no control character."""
    for frame_name, table in _COLUMNS.items():
        frame: pd.DataFrame = getattr(scenario, frame_name)
        for column in frame.columns.intersection(list(table.__table__.c.keys())):
            cells = frame[column]
            if cells.dtype != object or cells.empty:
                continue
            length = getattr(table.__table__.c[column].type, "length", None)
            texts = cells.map(lambda cell: cell if isinstance(cell, str) else "")
            assert not texts.str.contains(CONTROL).any(), f"{frame_name}.{column}: a control character got through"
            if length:
                assert texts.str.len().max() <= length, f"{frame_name}.{column}: longer than {length}"


@functools.cache
def _valid_rows() -> dict[bytes, str]:
    """The lines of the original orders.csv that are orders, with their order_id."""
    orders = load_scenario(SOURCE).orders
    lines = re.split(rb"\r\n|\r|\n", _read("orders.csv"))
    return {lines[line - 1]: order_id for line, order_id in zip(orders["line"], orders["order_id"])}


def check_orders(data: bytes) -> None:
    scenario = _load("orders.csv", data)
    if scenario is None:
        return
    _storable(scenario)
    read = set(zip(scenario.orders["order_id"], scenario.orders["line"]))
    assert len(scenario.orders) == len(read)
    # A mutation that leaves a row intact never loses that row: the same line, read as an order.
    for number, line in enumerate(re.split(rb"\r\n|\r|\n", data), 1):
        order_id = _valid_rows().get(line)
        if number > 1 and order_id and data.count(order_id.encode()) == 1:
            assert (order_id, number) in read, f"intact line {number} ({order_id}) was lost"


def mutate(rng, data: bytes) -> bytes:
    """mutate_bytes, and now and then what it never makes: a field past csv's 131,072-character
    limit, or a cell of digits, signs and spaces that an integer reader might half accept."""
    data = mutate_bytes(rng, data)
    if rng.random() < 0.15:
        at = rng.randrange(len(data) + 1)
        cell = rng.choice([b"x" * 140_000, b"9" * rng.randint(9, 30), b" +5", "\uff15".encode(), b"\x00", b"-0"])
        data = data[:at] + cell + data[at:]
    return data


def _tagged(name: str, body: bytes) -> bytes:
    return name.encode() + b"\n" + body


def _mutate_body(rng, data: bytes) -> bytes:
    """A register input keeps its first line (which file it is) and has its content mutated."""
    name, _, body = data.partition(b"\n")
    return name + b"\n" + mutate(rng, body)


def check_registers(data: bytes) -> None:
    name, _, body = data.partition(b"\n")
    scenario = _load(name.decode(), body)
    if scenario is not None:
        _storable(scenario)


def check_session(data: bytes) -> None:
    scenario = _load("session.toml", data)
    if scenario is not None:
        _storable(scenario)


def check_changes(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="vialflow-fuzz-") as tmp:
        path = Path(tmp) / "changes.toml"
        path.write_bytes(data)
        changes = _outcome(lambda: read_changes(path))
    if changes is not None:
        ids = [*changes.cancel, *(r.order_id for r in changes.redistribution), *(d.depot_id for d in changes.depot_days)]
        assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", i) for i in ids), ids


def _short_orders() -> bytes:
    """The header and the first fifty rows: mutations land on fewer, denser lines."""
    return b"\n".join(_read("orders.csv").split(b"\n")[:51]) + b"\n"


TARGETS: dict[str, Target] = {
    "orders": Target(lambda: [_read("orders.csv"), _short_orders()], check_orders, mutate),
    "registers": Target(lambda: [_tagged(name, _read(name)) for name in REGISTERS], check_registers, _mutate_body),
    "session": Target(lambda: [_read("session.toml")], check_session, mutate),
    "changes": Target(lambda: [CHANGES], check_changes, mutate),
}
