"""Everything that shows a run, asked about every line and officine of a drawn session: explain, lookup,
metrics and the console's pages must answer (each optional value of the data model handled)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from starlette.testclient import TestClient

from pipeline.adapters.db import make_engine
from pipeline.entrypoints.console.app import create_app
from pipeline.entrypoints.metrics import Collector
from pipeline.services.accounts import add_user, users
from pipeline.services.explain import explain
from pipeline.services.support import list_runs, lookup
from pipeline.settings import DATABASE_FILE

from .scenarios import Shape

OPERATOR, PASSWORD = "operateur", "un mot de passe assez long 7"


class NoWorkers:
    """The console's pages read; none of these checks hands work over."""

    def hand_over(self, run: int) -> None:
        raise AssertionError("a page read must not start a run")

    send_again = hand_over

    def running(self):
        import contextlib

        return contextlib.nullcontext()


def check_views(shape: Shape, out: Path, version: int) -> None:
    engine = make_engine(f"sqlite:///{out / DATABASE_FILE}")
    try:
        for line in shape.lines:
            found = explain(engine, line.order_id, shape.session_id, version)
            assert found["order_id"] == line.order_id and found["phrases"], f"explain {line.order_id}"
            json.dumps(found)
        officines = sorted({f for f, _, _, _ in shape.pharmacies} | {line.finess for line in shape.lines})
        for finess in officines:
            json.dumps(lookup(engine, finess, shape.session_id), default=str)
        json.dumps(list_runs(engine, shape.session_id), default=str)
        families = list(Collector(engine).collect())
        assert any(family.name == "vialflow_emails" for family in families)
        _console(shape, engine, out, version, officines)
    finally:
        engine.dispose()


def _console(shape: Shape, engine, out: Path, version: int, officines: list[str]) -> None:
    """The pages an adviser and an operator open, each answering 200 in French."""
    if not any(user["name"] == OPERATOR for user in users(engine)):
        add_user(engine, OPERATOR, "operator", PASSWORD, dt.datetime.now(dt.timezone.utc))
    with TestClient(create_app(engine, NoWorkers(), out), follow_redirects=False) as client:
        assert client.post("/login", data={"username": OPERATOR, "password": PASSWORD}).status_code == 303
        session = f"/sessions/{shape.session_id}"
        pages = [session, f"{session}/versions/{version}/rapport", f"{session}/emails", f"{session}/reallocation"]
        pages += [f"/officines/{finess}" for finess in officines[:4]]
        pages += [f"/api/officines/{finess}" for finess in officines[:4]]
        pages += [f"/lignes/{line.order_id}/explication" for line in shape.lines[:4]]
        pages += [f"/api/orders/{line.order_id}/explanation" for line in shape.lines[:4]]
        for page in pages:
            answer = client.get(page)
            assert answer.status_code == 200, f"{page}: {answer.status_code} {answer.text[:300]}"
